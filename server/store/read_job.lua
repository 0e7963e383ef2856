-- Read one job at one instant: its snapshot and, when asked, its events after a seq.
-- One script rather than a MULTI block, because a Redis Cluster client has no MULTI; the keys
-- share the job's slot, so it runs on the job's master like apply_update.lua.
--
-- KEYS[1..4] the job hash, extra hash, steps list and events stream, as in apply_update.lua
-- ARGV[1] the first entry id of the events to return ('<since + 1>-0'), or '' for none
--
-- Returns {job HGETALL, extra HGETALL, steps LRANGE 0 -1, events XRANGE ARGV[1] + (or {})}

local events = {}
if ARGV[1] ~= '' then events = redis.call('XRANGE', KEYS[4], ARGV[1], '+') end
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]),
        redis.call('LRANGE', KEYS[3], 0, -1), events}
