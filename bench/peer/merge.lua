-- The peer's merge: what tidings' apply_update.lua does per progress update, cut to the same
-- shape of work (read the job, merge extra key by key, number the event, keep it in the history,
-- re-arm the expiry), so that both sides pay one atomic script per update.
--
-- KEYS[1] job hash  peer:{<id>}:job     KEYS[2] extra hash  peer:{<id>}:extra
-- KEYS[3] history   peer:{<id>}:events  (a stream, entry id <seq>-0)
-- ARGV[1] job id    ARGV[2] now, ISO-8601 UTC    ARGV[3] step    ARGV[4] message
-- ARGV[5] progress  ARGV[6] extra patch: JSON {key: value JSON text}
-- ARGV[7] history length                         ARGV[8] TTL (s)
--
-- Returns the Event JSON.

local job_id, now_iso, step, message = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local progress = tonumber(ARGV[5])
local ok, patch = pcall(cjson.decode, ARGV[6])
if not ok or type(patch) ~= 'table' or not progress then return redis.error_reply('invalid') end

local job = {}
local flat = redis.call('HGETALL', KEYS[1])
for i = 1, #flat, 2 do job[flat[i]] = flat[i + 1] end
if job.epoch == nil then
  job = {epoch = redis.sha1hex(job_id .. now_iso):sub(1, 8), seq = '0', progress = '0'}
end
if progress < tonumber(job.progress) then progress = tonumber(job.progress) end

for key, value in pairs(patch) do redis.call('HSET', KEYS[2], key, value) end
local extra_flat = redis.call('HGETALL', KEYS[2])
local parts = {}
for i = 1, #extra_flat, 2 do
  parts[#parts + 1] = cjson.encode(extra_flat[i]) .. ':' .. extra_flat[i + 1]
end
table.sort(parts)

local seq = tonumber(job.seq) + 1
redis.call('HSET', KEYS[1], 'epoch', job.epoch, 'seq', seq, 'status', 'processing',
           'step', step, 'message', message, 'progress', progress, 'updated_at', now_iso)
local event = '{"job_id":' .. cjson.encode(job_id) .. ',"epoch":' .. cjson.encode(job.epoch)
  .. ',"seq":' .. seq .. ',"status":"processing","step":' .. cjson.encode(step)
  .. ',"message":' .. cjson.encode(message) .. ',"progress":' .. progress
  .. ',"eta_seconds":null,"timestamp":' .. cjson.encode(now_iso)
  .. ',"extra":{' .. table.concat(parts, ',') .. '},"result":null,"error":null}'
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], seq .. '-0', 'e', event)
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[8]) end
return event
