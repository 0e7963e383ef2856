-- Merge updates into jobs, atomically: the only place a job's state is written in Redis.
-- Each resulting event is published in the same call: an update is never stored but unsent.
--
-- A call carries one update or several, merged one after the other in the order given (a worker's
-- batch, on one Redis: one call instead of one per update; on a cluster each update is a call of
-- its own, its keys in one slot). Update i (from 1) has the keys KEYS[4i-3] .. KEYS[4i] and the
-- arguments ARGV[16i-15] .. ARGV[16i], each as below for the first:
--
-- KEYS[1] job hash    tidings:{<id>}:job     scalar state, epoch, seq, ETA bookkeeping
-- KEYS[2] extra hash  tidings:{<id>}:extra   one field per extra key, each value JSON text
-- KEYS[3] steps list  tidings:{<id>}:steps   the timeline, one JSON entry per step
-- KEYS[4] events      tidings:{<id>}:events  the history stream, entry id <seq>-0, field e = Event JSON
--
-- ARGV, each a string ('' for none):
--   [1] job_id  [2] mode: create | upsert | update  [3] now: ISO-8601 UTC  [4] now: epoch ms
--   [5] epoch, used if the job is created  [6] owner  [7] step ('' keep)  [8] message ('' keep)
--   [9] progress, a number  [10] status ('' derive)
--   [11] extra patch: JSON {"set": {key: value JSON text}, "del": [key, ...]} ('' none)
--   [12] result: JSON text  [13] error: JSON text
--   [14] the job's shard channel, hash-tagged like KEYS
--   [15], [16] the owner's channel is [15] .. owner .. [16]
-- (Separate strings, not one JSON object: decoding one cost more than the rest of the inputs.)
--
-- The merge rules both stores keep (server/store/rules.py) are not an argument: a store writes
-- them into this text as a Lua table (Rules.as_lua), in place of the marker on the line that
-- defines `rules` below, when it registers the script (one script per set of rules), so that no
-- call decodes them. The table:
--   limits {history, active_ttl, done_ttl, max_extra_bytes, max_steps},
--   transitions {status: [statuses that may follow]} (none: terminal),
--   implicit {status: where an update naming no status moves it}, initial,
--   eta {weight of the newest rate, decimals}
--
-- Publishes {"event": "job_update" | "job_complete" | "job_error", "data": <Event>} with
-- SPUBLISH on job_channel and, when the job has an owner, with PUBLISH on the owner's channel.
--
-- Returns a list of one reply per update, in order, each
--   {'event', <Event JSON>, created 0|1, owner} | {'none'} | {'terminal', status}
--   | {'missing'} | {'exists'} | {'owner'} | {'too_large', bytes} | {'invalid', reason}

local updates = #ARGV / 16
local function refuse(reason)  -- every update of the call, for an input that fails them all
  local replies = {}
  for i = 1, math.max(updates, 1) do replies[i] = {'invalid', reason} end
  return replies
end
if updates < 1 or updates % 1 ~= 0 or #KEYS ~= 4 * updates then return refuse('argument') end
local function text(value) return type(value) == 'string' and value or nil end
local rules = --[[rules]]
local limits, eta_rule = rules.limits or {}, rules.eta or {}
local transitions, implicit = rules.transitions, rules.implicit
local history = tonumber(limits.history)
local ttl_active, ttl_done = tonumber(limits.active_ttl), tonumber(limits.done_ttl)
local max_extra, max_steps = tonumber(limits.max_extra_bytes), tonumber(limits.max_steps)
local eta_weight, eta_decimals = tonumber(eta_rule.weight), tonumber(eta_rule.decimals)
local initial = text(rules.initial)
if not (history and ttl_active and ttl_done and max_extra and max_steps
        and eta_weight and eta_decimals) then
  return refuse('numbers')
end
if type(transitions) ~= 'table' or type(implicit) ~= 'table' or not initial then
  return refuse('rules')
end

local function may_follow(from, to)
  for _, next_status in ipairs(transitions[from] or {}) do
    if next_status == to then return true end
  end
  return false
end
local function terminal(status) return #(transitions[status] or {}) == 0 end

-- One update, given its own KEYS and ARGV (as above for the first).
local function merge(KEYS, ARGV)
  local job_id, mode, now_iso, epoch = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
  local owner_arg, step_arg, message_arg, status_arg = ARGV[6], ARGV[7], ARGV[8], ARGV[10]
  local result_arg, error_arg, job_channel = ARGV[12], ARGV[13], ARGV[14]
  local user_channel = {ARGV[15], ARGV[16]}
  local now_ms, given_progress = tonumber(ARGV[4]), tonumber(ARGV[9])
  local patched, patch = true, {}
  if ARGV[11] ~= '' then patched, patch = pcall(cjson.decode, ARGV[11]) end

  -- Validate every input before the first write: a failing script does not roll back.
  if mode ~= 'create' and mode ~= 'upsert' and mode ~= 'update' then return {'invalid', 'mode'} end
  if not now_ms then return {'invalid', 'numbers'} end
  if ARGV[9] ~= '' and given_progress == nil then return {'invalid', 'progress'} end
  if not patched or type(patch) ~= 'table' then return {'invalid', 'extra'} end

  local job = {}
  local flat = redis.call('HGETALL', KEYS[1])
  for i = 1, #flat, 2 do job[flat[i]] = flat[i + 1] end
  local created = job.epoch == nil
  local stored = {}  -- the fields as they are in Redis, so that only changed ones are written
  if not created then for key, value in pairs(job) do stored[key] = value end end

  if created then
    if mode == 'update' then return {'missing'} end
    job = {job_id = job_id, epoch = epoch, seq = '0', owner = owner_arg, status = initial,
           step = '', message = '', progress = '', eta = '', rate = '', eta_t = '', eta_p = '',
           created_at = now_iso, created_ms = tostring(now_ms), result = '', error = '', cancel_requested = '0'}
  else
    if mode == 'create' then return {'exists'} end
    if terminal(job.status) then return {'terminal', job.status} end
    -- The owner is fixed when the job is made: an update may not hand it to someone else.
    if owner_arg ~= '' and owner_arg ~= job.owner then return {'owner'} end
  end

  -- Status: only to one the rules let follow (never backwards); an update naming none moves the
  -- job where the rules say (reporting progress starts a queued job), a create moves nothing.
  local status = job.status
  if status_arg ~= '' then
    if may_follow(status, status_arg) then status = status_arg end
  elseif mode ~= 'create' and text(implicit[status]) then
    status = implicit[status]
  end

  local step = step_arg ~= '' and step_arg or job.step
  if step == '' then step = status end
  local message = message_arg ~= '' and message_arg or job.message

  local progress = job.progress ~= '' and tonumber(job.progress) or nil
  if given_progress and (progress == nil or given_progress > progress) then progress = given_progress end
  if status == 'done' then progress = 100 end

  -- Extra, merged key by key; the size of the merged object is checked before anything is written.
  -- A job made afresh (its hash expired or was evicted) ignores whatever else of an earlier
  -- life is left: extra, timeline and history are deleted below before the first write.
  local extra = {}
  if not created then
    local extra_flat = redis.call('HGETALL', KEYS[2])
    for i = 1, #extra_flat, 2 do extra[extra_flat[i]] = extra_flat[i + 1] end
  end
  local extra_changed = false
  for key, value in pairs(patch.set or {}) do
    if extra[key] ~= value then extra[key] = value; extra_changed = true end
  end
  for _, key in ipairs(patch.del or {}) do
    if extra[key] ~= nil then extra[key] = nil; extra_changed = true end
  end
  local keys, extra_json = {}, {}
  for key in pairs(extra) do keys[#keys + 1] = key end
  table.sort(keys)
  for i, key in ipairs(keys) do extra_json[i] = cjson.encode(key) .. ':' .. extra[key] end
  local extra_text = '{' .. table.concat(extra_json, ',') .. '}'
  if #extra_text > max_extra then return {'too_large', #extra_text} end

  local result = result_arg ~= '' and result_arg or job.result
  local err = error_arg ~= '' and error_arg or job.error

  local changed = created or extra_changed or status ~= job.status or step ~= job.step
    or message ~= job.message or tostring(progress or '') ~= job.progress
    or result ~= job.result or err ~= job.error
  if not changed then return {'none'} end
  if created then redis.call('DEL', KEYS[2], KEYS[3], KEYS[4]) end

  -- ETA: a moving average of the progress rate, recomputed when progress moves.
  if tostring(progress or '') ~= job.progress and progress ~= nil and status == 'processing' then
    local last_t, last_p = tonumber(job.eta_t), tonumber(job.eta_p)
    if last_t and last_p and now_ms > last_t then
      local instant = (progress - last_p) * 1000 / (now_ms - last_t)
      local rate = tonumber(job.rate)
      rate = rate and (eta_weight * instant + (1 - eta_weight) * rate) or instant
      job.rate = tostring(rate)
      -- Too slow a rate (a step of 1e-310 points is valid progress) gives no finite ETA, and
      -- cjson cannot carry inf: the ETA before it is kept.
      local scale = 10 ^ eta_decimals
      local scaled = rate > 0 and (100 - progress) / rate * scale or math.huge
      if scaled < math.huge then
        job.eta = tostring(math.floor(scaled + 0.5) / scale)
      end
    end
    job.eta_t, job.eta_p = tostring(now_ms), tostring(progress)
  end
  if terminal(status) then job.eta = '' end

  -- The timeline: a new step completes the one before it; the job's end settles the last one.
  local last_raw = redis.call('LINDEX', KEYS[3], -1)
  local last = last_raw and cjson.decode(last_raw) or nil
  local json_progress = progress == nil and cjson.null or progress
  if last == nil or step ~= job.step then
    if last and last.status == 'in_progress' then
      last.status, last.updated_at = 'complete', now_iso
      redis.call('LSET', KEYS[3], -1, cjson.encode(last))
    end
    last = {step = step, message = message, status = 'in_progress', progress = json_progress,
            started_at = now_iso, updated_at = now_iso}
    redis.call('RPUSH', KEYS[3], cjson.encode(last))
    redis.call('LTRIM', KEYS[3], -max_steps, -1)
  else
    last.message, last.progress, last.updated_at = message, json_progress, now_iso
  end
  if status == 'done' then last.status = 'complete' elseif terminal(status) then last.status = 'error' end
  redis.call('LSET', KEYS[3], -1, cjson.encode(last))

  local seq = tonumber(job.seq) + 1
  job.seq, job.status, job.step, job.message = tostring(seq), status, step, message
  job.progress, job.result, job.error, job.updated_at = tostring(progress or ''), result, err, now_iso
  if status == 'cancelled' then job.cancel_requested = '1' end

  local fields = {}
  for key, value in pairs(job) do
    if stored[key] ~= value then fields[#fields + 1] = key; fields[#fields + 1] = value end
  end
  redis.call('HSET', KEYS[1], unpack(fields))  -- never empty: seq has changed
  for _, key in ipairs(patch.del or {}) do redis.call('HDEL', KEYS[2], key) end
  for key, value in pairs(patch.set or {}) do redis.call('HSET', KEYS[2], key, value) end

  local head = cjson.encode({job_id = job_id, epoch = job.epoch, seq = seq, status = status,
    step = step, message = message, progress = json_progress,
    eta_seconds = job.eta ~= '' and tonumber(job.eta) or cjson.null, timestamp = now_iso})
  local event = string.sub(head, 1, -2) .. ',"extra":' .. extra_text
    .. ',"result":' .. (status == 'done' and result ~= '' and result or 'null')
    .. ',"error":' .. (err ~= '' and err or 'null') .. '}'
  redis.call('XADD', KEYS[4], 'MAXLEN', history, seq .. '-0', 'e', event)

  local ttl = terminal(status) and ttl_done or ttl_active
  for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, ttl) end

  local name = 'job_update'
  if status == 'done' then name = 'job_complete' elseif terminal(status) then name = 'job_error' end
  local published = '{"event":"' .. name .. '","data":' .. event .. '}'
  redis.call('SPUBLISH', job_channel, published)
  if job.owner ~= '' then
    redis.call('PUBLISH', user_channel[1] .. job.owner .. user_channel[2], published)
  end
  return {'event', event, created and 1 or 0, job.owner}
end

local replies = {}
for i = 0, updates - 1 do
  local keys = {KEYS[4 * i + 1], KEYS[4 * i + 2], KEYS[4 * i + 3], KEYS[4 * i + 4]}
  replies[i + 1] = merge(keys, {unpack(ARGV, 16 * i + 1, 16 * i + 16)})
end
return replies
