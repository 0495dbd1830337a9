"""The job runner's Redis state changes, each one atomic Lua script: no crash point loses or doubles a job.

Layout (names in appliance/keys.py): ``queue:<q>`` lists (LPUSH in, RPOP out), ``job:<id>`` hashes,
``running`` zset scored by lease expiry, ``scheduled`` zset by due time, ``dead`` and ``failed`` zsets,
``wakeup`` list of tokens that idle workers block on, ``unique:<key>`` strings, ``stat:*`` counters,
``idle`` zset of workers waiting for work (scored by their lease seconds) and each one's ``inbox:<worker>``
list.

A worker whose fetch found nothing registers in ``idle`` (in the same script) and blocks on its inbox and
the wake-up list. An enqueue that finds an idle worker takes the job for it at once (leased to it, in
``running``, exactly as a fetch would) and pushes the job's row onto that worker's inbox: the worker starts
it when its blocking pop returns, with no fetch round trip. The job is leased from the moment it is handed
over, so a worker killed before it starts the job loses only the lease: the job is requeued when it expires.

A taken job carries a lease token ``<worker>:<attempt>``; finishing, failing, renewing and handing back
all check it, so a worker that lost its lease (its job was requeued and taken again) changes nothing.
"""

from __future__ import annotations

# Lua: take one queued job for a worker (lease token, running zset), returning the row workers start from.
_TAKE = """
local function take(prefix, id, worker, now, expires, running)
  local jk = prefix .. 'job:' .. id
  local attempts = redis.call('HINCRBY', jk, 'attempts', 1)
  local token = worker .. ':' .. attempts
  redis.call('HSET', jk, 'status', 'running', 'started_at', now, 'worker', worker, 'lease', token)
  redis.call('ZADD', running, expires, id)
  local f = redis.call('HMGET', jk, 'name', 'args', 'timeout', 'max_retries', 'queue', 'enqueued_at')
  return {id, token, attempts, f[1], f[2], f[3], f[4], f[5], f[6]}
end
"""

# KEYS: scheduled, wakeup, idle, running
# ARGV: prefix, now, stride (values per job), then per job: id, queue key, due ('' = now), mode ('0' none,
#       '1' unique while active, '2' once for ttl), ttl, dedupe key, field/value...
# Jobs are accepted in order, so a second job in the batch with the first one's unique key is a duplicate.
# Returns (id, added) per job: the earlier job's id and 0 when its unique key was already held.
ENQUEUE = _TAKE + """
local prefix, now, stride = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out, woken = {}, false
for base = 4, #ARGV, stride do
  local id, due, mode, dedupe = ARGV[base], ARGV[base + 2], ARGV[base + 3], ARGV[base + 5]
  local existing = nil
  if mode ~= '0' then
    existing = redis.call('GET', dedupe)
    if existing and mode ~= '2' then
      local state = redis.call('HGET', prefix .. 'job:' .. existing, 'status')
      if not (state == 'queued' or state == 'scheduled' or state == 'running' or state == 'failed') then
        existing = nil
      end
    end
  end
  if existing then
    out[#out + 1] = {existing, 0}
  else
    if mode == '2' then
      redis.call('SET', dedupe, id, 'EX', ARGV[base + 4])
    elseif mode == '1' then
      redis.call('SET', dedupe, id)
    end
    redis.call('HSET', prefix .. 'job:' .. id, unpack(ARGV, base + 6, base + stride - 1))
    local idle = due == '' and redis.call('ZPOPMIN', KEYS[3]) or {}
    if due ~= '' then
      redis.call('ZADD', KEYS[1], due, id)
    elseif idle[1] then
      local row = take(prefix, id, idle[1], now, tonumber(now) + tonumber(idle[2]), KEYS[4])
      redis.call('LPUSH', prefix .. 'inbox:' .. idle[1], cjson.encode(row))
      redis.call('INCR', prefix .. 'stat:started')
    else
      redis.call('LPUSH', ARGV[base + 1], id)
      redis.call('LPUSH', KEYS[2], '1')
      woken = true
    end
    out[#out + 1] = {id, 1}
  end
end
if woken then redis.call('LTRIM', KEYS[2], 0, 63) end
return out
"""

# KEYS: running, queue:high, queue:default, queue:low, idle
# ARGV: prefix, n, now, lease seconds, worker id, register ('1': nothing taken -> the worker goes idle)
# Jobs handed to the worker's inbox while it was idle come first (already its own), then up to n queued ones.
FETCH = _TAKE + """
local prefix, n, now, worker = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[5]
local expires = tonumber(now) + tonumber(ARGV[4])
local out = {}
redis.call('ZREM', KEYS[5], worker)
local inbox = prefix .. 'inbox:' .. worker
local handed = redis.call('LRANGE', inbox, 0, -1)
if #handed > 0 then redis.call('DEL', inbox) end
for i = #handed, 1, -1 do
  local row = cjson.decode(handed[i])
  if redis.call('HGET', prefix .. 'job:' .. row[1], 'lease') == row[2] then
    out[#out + 1] = row
    n = n - 1
  end
end
local taken = 0
for q = 2, 4 do
  if n <= 0 then break end
  local ids = redis.call('RPOP', KEYS[q], n)
  if ids then
    for _, id in ipairs(ids) do
      if redis.call('EXISTS', prefix .. 'job:' .. id) == 1 then
        out[#out + 1] = take(prefix, id, worker, now, expires, KEYS[1])
        taken = taken + 1
        n = n - 1
      end
    end
  end
end
if taken > 0 then redis.call('INCRBY', prefix .. 'stat:started', taken) end
if #out == 0 and ARGV[6] == '1' then redis.call('ZADD', KEYS[5], ARGV[4], worker) end
return out
"""

# KEYS: running
# ARGV: prefix, now, ttl, then (id, token, result json, duration bucket, duration) per job
FINISH = """
local prefix, now, done = ARGV[1], ARGV[2], 0
for i = 4, #ARGV, 5 do
  local id = ARGV[i]
  local jk = prefix .. 'job:' .. id
  if redis.call('HGET', jk, 'lease') == ARGV[i + 1] then
    redis.call('ZREM', KEYS[1], id)
    redis.call('HSET', jk, 'status', 'finished', 'finished_at', now, 'result', ARGV[i + 2], 'lease', '')
    local uk = redis.call('HGET', jk, 'unique_key')
    if uk and uk ~= '' and redis.call('GET', prefix .. 'unique:' .. uk) == id then
      redis.call('DEL', prefix .. 'unique:' .. uk)
    end
    redis.call('EXPIRE', jk, ARGV[3])
    redis.call('HINCRBY', prefix .. 'stat:duration', ARGV[i + 3], 1)
    redis.call('HINCRBYFLOAT', prefix .. 'stat:duration', 'sum', ARGV[i + 4])
    done = done + 1
  end
end
redis.call('INCRBY', prefix .. 'stat:finished', done)
return done
"""

# KEYS: running, scheduled, dead, failed
# ARGV: prefix, id, token, now, error, traceback, retry at ('' = dead), dead ttl
FAIL = """
local prefix, id, now = ARGV[1], ARGV[2], ARGV[4]
local jk = prefix .. 'job:' .. id
if redis.call('HGET', jk, 'lease') ~= ARGV[3] then return 0 end
redis.call('ZREM', KEYS[1], id)
redis.call('ZADD', KEYS[4], now, id)
redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -1001)
redis.call('HSET', jk, 'error', ARGV[5], 'traceback', ARGV[6], 'failed_at', now, 'lease', '')
redis.call('INCR', prefix .. 'stat:failed')
if ARGV[7] ~= '' then
  redis.call('HSET', jk, 'status', 'failed', 'due_at', ARGV[7])
  redis.call('ZADD', KEYS[2], ARGV[7], id)
  redis.call('INCR', prefix .. 'stat:retried')
  return 1
end
redis.call('HSET', jk, 'status', 'dead', 'finished_at', now)
redis.call('ZADD', KEYS[3], now, id)
local uk = redis.call('HGET', jk, 'unique_key')
if uk and uk ~= '' and redis.call('GET', prefix .. 'unique:' .. uk) == id then
  redis.call('DEL', prefix .. 'unique:' .. uk)
end
redis.call('EXPIRE', jk, ARGV[8])
redis.call('INCR', prefix .. 'stat:dead')
return 2
"""

# KEYS: running, wakeup
# ARGV: prefix, then (id, token) per job. Hands jobs back to the front of their queue, not an attempt.
RELEASE = """
local prefix, n = ARGV[1], 0
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  local jk = prefix .. 'job:' .. id
  if redis.call('HGET', jk, 'lease') == ARGV[i + 1] then
    redis.call('ZREM', KEYS[1], id)
    redis.call('HSET', jk, 'status', 'queued', 'lease', '', 'worker', '')
    redis.call('HINCRBY', jk, 'attempts', -1)
    redis.call('RPUSH', prefix .. 'queue:' .. redis.call('HGET', jk, 'queue'), id)
    redis.call('LPUSH', KEYS[2], '1')
    n = n + 1
  end
end
redis.call('LTRIM', KEYS[2], 0, 63)
return n
"""

# KEYS: running
# ARGV: prefix, new expiry, then (id, token) per job. Returns the ids whose lease is no longer ours.
RENEW = """
local lost = {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('HGET', ARGV[1] .. 'job:' .. id, 'lease') == ARGV[i + 1] then
    redis.call('ZADD', KEYS[1], ARGV[2], id)
  else
    lost[#lost + 1] = id
  end
end
return lost
"""

# KEYS: running, wakeup, dead
# ARGV: prefix, now, limit, poison limit. Jobs whose holder stopped renewing go back to the front of their
# queue; one whose holders died ``poison limit`` times (it kills every worker that takes it) goes dead.
REQUEUE_EXPIRED = """
local prefix, now = ARGV[1], ARGV[2]
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local jk = prefix .. 'job:' .. id
  local q = redis.call('HGET', jk, 'queue')
  if q then
    local losses = redis.call('HINCRBY', jk, 'lease_losses', 1)
    redis.call('HSET', jk, 'lease', '', 'worker', '', 'requeued_at', now)
    if losses >= tonumber(ARGV[4]) then
      redis.call('HSET', jk, 'status', 'dead', 'finished_at', now,
                 'error', 'its worker died ' .. losses .. ' times while running it (poison job)')
      redis.call('ZADD', KEYS[3], now, id)
      local uk = redis.call('HGET', jk, 'unique_key')
      if uk and uk ~= '' and redis.call('GET', prefix .. 'unique:' .. uk) == id then
        redis.call('DEL', prefix .. 'unique:' .. uk)
      end
      redis.call('INCR', prefix .. 'stat:dead')
    else
      redis.call('HSET', jk, 'status', 'queued')
      redis.call('RPUSH', prefix .. 'queue:' .. q, id)
      redis.call('LPUSH', KEYS[2], '1')
    end
  end
end
if #ids > 0 then
  redis.call('LTRIM', KEYS[2], 0, 63)
  redis.call('INCRBY', prefix .. 'stat:requeued', #ids)
end
return ids
"""

# KEYS: scheduled, wakeup
# ARGV: prefix, now, limit. Due delayed jobs and retries join the back of their queue.
PROMOTE_DUE = """
local prefix = ARGV[1]
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local jk = prefix .. 'job:' .. id
  local q = redis.call('HGET', jk, 'queue')
  if q then
    redis.call('HSET', jk, 'status', 'queued')
    redis.call('LPUSH', prefix .. 'queue:' .. q, id)
    redis.call('LPUSH', KEYS[2], '1')
  end
end
if #ids > 0 then redis.call('LTRIM', KEYS[2], 0, 63) end
return #ids
"""

# KEYS: job, dead, scheduled, wakeup
# ARGV: prefix, id, now. An operator's retry of a failed or dead job: queued again with fresh attempts.
RETRY = """
local state = redis.call('HGET', KEYS[1], 'status')
if not state then return 'missing' end
if state ~= 'dead' and state ~= 'failed' then return state end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('PERSIST', KEYS[1])
redis.call('HSET', KEYS[1], 'status', 'queued', 'attempts', 0, 'enqueued_at', ARGV[3])
redis.call('LPUSH', ARGV[1] .. 'queue:' .. redis.call('HGET', KEYS[1], 'queue'), ARGV[2])
redis.call('LPUSH', KEYS[4], '1')
redis.call('LTRIM', KEYS[4], 0, 63)
return 'queued'
"""

# KEYS: running, scheduled, dead
# ARGV: prefix, cap. Per queue counts of running, scheduled (delayed), failed (awaiting retry) and dead.
COUNT_BY_QUEUE = """
local out = {}
local function tally(ids)
  for _, id in ipairs(ids) do
    local f = redis.call('HMGET', ARGV[1] .. 'job:' .. id, 'queue', 'status')
    if f[1] then
      local k = f[1] .. '|' .. f[2]
      out[k] = (out[k] or 0) + 1
    end
  end
end
local cap = tonumber(ARGV[2])
tally(redis.call('ZRANGE', KEYS[1], 0, cap))
tally(redis.call('ZRANGE', KEYS[2], 0, cap))
tally(redis.call('ZRANGE', KEYS[3], 0, cap))
local flat = {}
for k, v in pairs(out) do flat[#flat + 1] = k; flat[#flat + 1] = v end
return flat
"""
