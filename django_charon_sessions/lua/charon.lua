#!lua name=charon___VERSION__
--[[
django-charon-sessions: the Redis function library.

The Python side replaces __VERSION__ with a hash of this file before it calls
FUNCTION LOAD, so every release has its own library name and function names,
and two releases can share one Redis during a rolling deploy.

Key schema (P is the KEY_PREFIX setting, T a 20 character tag, M a member):

  P:{T}:s:M   HASH  one session. M is a hash of the cookie value, never the
                    cookie itself. T is the user's tag for an authenticated
                    session (a keyed hash of the user id) and a random tag for
                    an anonymous one; both are part of the cookie.
                    Fields whose name starts with the byte 0xFF are ours:
                      \xffc  creation time, unix seconds (server clock)
                      \xffu  user id, present while the session is indexed
                      \xffs  last seen, unix seconds: a copy of the time in
                             P:{T}:m, so a load reads it with the data
                    Every other field is one session key (UTF-8) whose value
                    is a signature followed by the serialized value. The
                    byte 0xFF never occurs in UTF-8, so the two cannot clash.
  P:{T}:i     ZSET  the user's index: member M, score = expiry in unix ms.
  P:{T}:m     HASH  the user's session metadata: M -> "LLLLLLLLLL|CCCCCCCCCC|rest":
                    last seen and created in unix seconds (10 digits each),
                    rest opaque to this library (the request facts).
  P:{T}:x     ZSET  ended sessions whose hash may still exist: member M, score
                    = the hash's expiry in unix ms. Cleanup deletes those
                    hashes (purge); the key expires with its last entry.

The keys of one tag share a hash slot, so every call below touches exactly
one slot and runs unchanged on Redis Cluster. Every key a function touches is
named in KEYS.

An authenticated session is alive only while its member is in the index:
ending all of a user's sessions moves the index into the ended set in one
step, and a session whose member is missing is treated as gone (and deleted)
the next time any function sees it. That is what keeps an ended session dead.

Return codes used below: 1 done (save: 1 + the number of sessions ended by
the per-user limit), 0 key already exists (create collision), -1 session gone
(deleted, expired or ended), -2 absolute lifetime over.
--]]

local META = '\255'
local F_CREATED = META .. 'c'
local F_USER = META .. 'u'
local F_SEEN = META .. 's'
-- Bound the work a single call does on behalf of expired index entries;
-- the cleanup command takes care of any remainder.
local PRUNE_LIMIT = 64
-- Lua's stack limits how many values unpack() may spread; stay well below.
local CHUNK = 4000

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Call cmd(key, list[first..last]) in chunks. CHUNK is even, so field/value
-- pairs never straddle two calls.
local function call_chunked(cmd, key, list, first, last)
  while first <= last do
    local stop = math.min(last, first + CHUNK - 1)
    redis.call(cmd, key, unpack(list, first, stop))
    first = stop + 1
  end
end

local function fmt(n)
  return string.format('%d', math.floor(n))
end

local function meta_value(now_s, created_s, rest)
  return string.format('%010d|%010d|', math.floor(now_s), math.floor(created_s)) .. rest
end

local function expire_with_last(key, zset)
  local last = redis.call('ZRANGE', zset, -1, -1, 'WITHSCORES')
  if #last > 0 then
    redis.call('PEXPIREAT', key, fmt(tonumber(last[2])))
  end
  return #last > 0
end

-- Drop index entries whose expiry has passed, with their metadata, then
-- let the index and metadata keys expire together with their last session.
local function refresh_index(index, meta, now)
  local stale = redis.call('ZRANGEBYSCORE', index, '-inf', now, 'LIMIT', 0, PRUNE_LIMIT)
  if #stale > 0 then
    redis.call('ZREM', index, unpack(stale))
    redis.call('HDEL', meta, unpack(stale))
  end
  local last = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
  if #last > 0 then
    local at = fmt(tonumber(last[2]))
    redis.call('PEXPIREAT', index, at)
    redis.call('PEXPIREAT', meta, at)
  else
    redis.call('DEL', index, meta)
  end
  return #stale
end

local function unindex(index, meta, member)
  redis.call('ZREM', index, member)
  redis.call('HDEL', meta, member)
end

-- Move members (with their index scores) from the index to the ended set.
local function bury(index, meta, ended, members)
  for _, m in ipairs(members) do
    local score = redis.call('ZSCORE', index, m)
    if score then
      redis.call('ZADD', ended, score, m)
    end
    unindex(index, meta, m)
  end
  expire_with_last(ended, ended)
end

-- A session is alive when its hash exists and, if it belongs to a user,
-- its member is still in that user's index. Returns alive, user id.
-- Returns ok, user (or false), created (or false). Every stored session has
-- a creation time, so one HMGET tells a live hash from a missing one.
local function alive(session, index, member)
  local got = redis.call('HMGET', session, F_USER, F_CREATED)
  local user, created = got[1], got[2]
  if not user and not created and redis.call('EXISTS', session) == 0 then
    return false, false, false
  end
  if user and not redis.call('ZSCORE', index, member) then
    return false, user, created
  end
  return true, user, created
end

-- Apply ARGV[at] = n followed by n field/value pairs, then a count of fields
-- to delete and those fields. Returns the index after the last one used.
local function write_fields(session, argv, at)
  local nset = tonumber(argv[at])
  call_chunked('HSET', session, argv, at + 1, at + 2 * nset)
  at = at + 1 + 2 * nset
  local ndel = tonumber(argv[at])
  call_chunked('HDEL', session, argv, at + 1, at + ndel)
  return at + 1 + ndel
end

local function drop_data_fields(session)
  local fields = redis.call('HKEYS', session)
  local data = {}
  for _, f in ipairs(fields) do
    if string.byte(f, 1) ~= 255 then
      data[#data + 1] = f
    end
  end
  call_chunked('HDEL', session, data, 1, #data)
end

-- The idle TTL asked for, shortened to what is left of the absolute
-- lifetime. Returns milliseconds; zero or less means "already over".
local function effective_ttl(created, ttl, absolute, now)
  if absolute > 0 then
    local left = (tonumber(created or '0') + absolute) * 1000 - now
    if left < ttl then
      return left
    end
  end
  return ttl
end

-- End the oldest sessions (by creation) of a user beyond `limit`, sparing
-- `keep`. Returns how many were ended.
local function enforce_limit(index, meta, ended, limit, keep, now)
  if limit <= 0 or redis.call('ZCARD', index) <= limit then
    return 0
  end
  -- Expired entries must not count, nor be chosen: drop them all first.
  local stale = redis.call('ZRANGEBYSCORE', index, '-inf', now)
  call_chunked('ZREM', index, stale, 1, #stale)
  call_chunked('HDEL', meta, stale, 1, #stale)
  local count = redis.call('ZCARD', index)
  if count <= limit then
    return 0
  end
  local members = redis.call('ZRANGE', index, 0, -1)
  local aged = {}
  for _, m in ipairs(members) do
    if m ~= keep then
      local v = redis.call('HGET', meta, m)
      aged[#aged + 1] = {m, v and tonumber(string.sub(v, 12, 21)) or 0}
    end
  end
  table.sort(aged, function(a, b) return a[2] < b[2] end)
  local victims = {}
  for n = 1, count - limit do
    victims[n] = aged[n][1]
  end
  bury(index, meta, ended, victims)
  return #victims
end

-- Set TTL and index state of a session whose fields are written. meta_rest
-- is the request facts to store ('' keeps an existing entry's). Returns the
-- number of sessions ended by the per-user limit.
local function finish(keys, member, ttl, user, old_user, meta_rest, limit, now, created, has_meta)
  local session, index, meta, ended = keys[1], keys[2], keys[3], keys[4]
  redis.call('PEXPIRE', session, fmt(ttl))
  if user ~= '' then
    if user ~= old_user then
      redis.call('HSET', session, F_USER, user)
    end
    local added = redis.call('ZADD', index, fmt(now + ttl), member)
    -- A member already indexed has its metadata (load restores it if it
    -- was lost); only a new one, or new request facts, write it here.
    if meta_rest ~= '' or (added == 1 and not has_meta) then
      created = created or fmt(now / 1000)
      redis.call('HSET', meta, member, meta_value(now / 1000, tonumber(created), meta_rest))
    end
    local limited = 0
    if added == 1 then
      limited = enforce_limit(index, meta, ended, limit, member, now)
    end
    refresh_index(index, meta, now)
    return limited
  elseif old_user then
    redis.call('HDEL', session, F_USER)
    unindex(index, meta, member)
    refresh_index(index, meta, now)
  end
  return 0
end

--[[
load
  KEYS  session, index, meta
  ARGV  member, touch_interval (s, 0 = never), absolute_max_age (s, 0 = none),
        meta_rest (request facts, '' = keep)
  Reply nil when there is no live session, else HGETALL of the session.
  Side effects: deletes a session that was ended or outlived its absolute
  lifetime; updates "last seen" (and the request facts) when it is older
  than touch_interval.
--]]
local function load(keys, argv)
  local session, index, meta = keys[1], keys[2], keys[3]
  local member = argv[1]
  local touch, absolute, rest = tonumber(argv[2]), tonumber(argv[3]), argv[4]
  local fields = redis.call('HGETALL', session)
  if #fields == 0 then
    return false
  end
  local user, created, last = false, 0, 0
  for i = 1, #fields, 2 do
    local f = fields[i]
    if f == F_USER then
      user = fields[i + 1]
    elseif f == F_CREATED then
      created = tonumber(fields[i + 1])
    elseif f == F_SEEN then
      last = tonumber(fields[i + 1])
    end
  end
  local now = nil
  if absolute > 0 then
    now = now_ms()
    if (created + absolute) * 1000 <= now then
      redis.call('DEL', session)
      if user then
        unindex(index, meta, member)
      end
      return false
    end
  end
  if user then
    if not redis.call('ZSCORE', index, member) then
      redis.call('DEL', session)
      redis.call('HDEL', meta, member)
      return false
    end
    if touch > 0 then
      now = now or now_ms()
      local now_s = math.floor(now / 1000)
      -- The copy in the hash came with the data: most loads stop here.
      if last + touch <= now_s then
        local seen = redis.call('HGET', meta, member)
        local stamp = now_s
        if not seen then
          -- Lost (evicted, say): write it again rather than list no facts.
          redis.call('HSET', meta, member, meta_value(now_s, created, rest))
        elseif tonumber(string.sub(seen, 1, 10)) + touch <= now_s then
          if rest == '' then
            rest = string.sub(seen, 23)
          end
          redis.call('HSET', meta, member,
            meta_value(now_s, tonumber(string.sub(seen, 12, 21)), rest))
        else
          stamp = tonumber(string.sub(seen, 1, 10))
        end
        redis.call('HSET', session, F_SEEN, fmt(stamp))
      end
    end
  end
  return fields
end

--[[
exists (no-writes)
  KEYS  session, index
  ARGV  member
  Reply 1 when the session is alive, else 0.
--]]
local function exists(keys, argv)
  local ok = alive(keys[1], keys[2], argv[1])
  return ok and 1 or 0
end

--[[
save
  KEYS  session, index, meta, ended
  ARGV  mode, member, ttl_ms, user, meta_rest, absolute_max_age (s),
        max_sessions_per_user (0 = no limit),
        nset, field, value, ..., ndel, field, ...
        mode 'c' creates and never overwrites; 'u' updates the given fields;
        'r' replaces all data fields. user is '' for an anonymous session.
  Reply 1 + n saved (n sessions of the user ended by the limit), 0 exists
        (create only), -1 gone (update only; nothing is written), -2
        absolute lifetime over (the session is deleted).
--]]
local function save(keys, argv)
  local session, index, meta = keys[1], keys[2], keys[3]
  local mode, member, ttl, user, meta_rest = argv[1], argv[2], tonumber(argv[3]), argv[4], argv[5]
  local absolute, limit = tonumber(argv[6]), tonumber(argv[7])
  local now = now_ms()
  local old_user, created = false, false
  if mode == 'c' then
    if redis.call('EXISTS', session) == 1 then
      return 0
    end
    created = fmt(now / 1000)
    redis.call('HSET', session, F_CREATED, created)
  else
    local ok
    ok, old_user, created = alive(session, index, member)
    if not ok then
      if old_user then
        redis.call('DEL', session)
        redis.call('HDEL', meta, member)
      end
      return -1
    end
    if mode == 'r' then
      drop_data_fields(session)
    end
  end
  write_fields(session, argv, 8)
  ttl = effective_ttl(created, ttl, absolute, now)
  if ttl <= 0 then
    redis.call('DEL', session)
    if old_user then
      unindex(index, meta, member)
      refresh_index(index, meta, now)
    end
    return -2
  end
  return 1 + finish(keys, member, ttl, user, old_user, meta_rest, limit, now, created)
end

--[[
cycle
  KEYS  old session, new session, index, meta, ended (one tag, so one slot)
  ARGV  old member, new member, require_old ('1' or '0'), ttl_ms, user,
        meta_rest, absolute_max_age (s), nset, field, value, ..., ndel, ...
        The new session receives the creation time and metadata of the old
        one (if it is alive) and the given fields.
  Reply 1 done, 0 new key exists (nothing written), -1 the old session is
        gone and require_old was '1' (it is cleaned up, nothing created),
        -2 absolute lifetime over (both are gone).
--]]
local function cycle(keys, argv)
  local old, new, index, meta = keys[1], keys[2], keys[3], keys[4]
  local old_member, new_member = argv[1], argv[2]
  local ttl, user, meta_rest = tonumber(argv[4]), argv[5], argv[6]
  local absolute = tonumber(argv[7])
  if redis.call('EXISTS', new) == 1 then
    return 0
  end
  local now = now_ms()
  local ok, old_user, old_created = alive(old, index, old_member)
  if not ok and argv[3] == '1' then
    redis.call('DEL', old)
    unindex(index, meta, old_member)
    return -1
  end
  local created = fmt(now / 1000)
  local seen = false
  if ok then
    created = old_created or created
    seen = redis.call('HGET', meta, old_member)
  end
  redis.call('DEL', old)
  if old_user then
    unindex(index, meta, old_member)
  end
  redis.call('HSET', new, F_CREATED, created)
  if seen then
    -- Keep last seen, created and the request facts across the new key.
    redis.call('HSET', meta, new_member, seen)
  end
  write_fields(new, argv, 8)
  ttl = effective_ttl(created, ttl, absolute, now)
  if ttl <= 0 then
    redis.call('DEL', new)
    unindex(index, meta, new_member)
    refresh_index(index, meta, now)
    return -2
  end
  finish({new, index, meta, keys[5]}, new_member, ttl, user, false, meta_rest, 0, now, created,
    seen ~= false)
  return 1
end

--[[
delete
  KEYS  session, index, meta
  ARGV  member
  Reply 1 if a session hash was deleted, else 0. The index entry and
        metadata go too.
--]]
local function delete(keys, argv)
  local removed = redis.call('DEL', keys[1])
  if redis.call('ZREM', keys[2], argv[1]) == 1 then
    redis.call('HDEL', keys[3], argv[1])
    refresh_index(keys[2], keys[3], now_ms())
  else
    redis.call('HDEL', keys[3], argv[1])
  end
  return removed
end

--[[
list (no-writes)
  KEYS  index, meta
  ARGV  (none)
  Reply member, expiry (unix ms), metadata ('' if none), ... for every live
        session of the user, oldest expiry first.
--]]
local function list(keys, argv)
  local entries = redis.call('ZRANGEBYSCORE', keys[1], '(' .. fmt(now_ms()), '+inf', 'WITHSCORES')
  local out = {}
  for i = 1, #entries, 2 do
    local m = entries[i]
    out[#out + 1] = m
    out[#out + 1] = entries[i + 1]
    out[#out + 1] = redis.call('HGET', keys[2], m) or ''
  end
  return out
end

--[[
end_one
  KEYS  session, index, meta
  ARGV  member
  Reply 1 if the session was a live session of this index (now ended and
        deleted), else 0. A session of another user is never touched.
--]]
local function end_one(keys, argv)
  local session, index, meta, member = keys[1], keys[2], keys[3], argv[1]
  if not redis.call('ZSCORE', index, member) then
    return 0
  end
  local now = now_ms()
  local live = tonumber(redis.call('ZSCORE', index, member)) > now
  redis.call('DEL', session)
  unindex(index, meta, member)
  refresh_index(index, meta, now)
  return live and 1 or 0
end

--[[
end_all
  KEYS  index, meta, ended
  ARGV  member to keep ('' for none)
  Reply the number of live sessions ended. All of them leave the index in
        this one step, so no save or cycle that starts later can keep them
        alive; their hashes are deleted by purge (cleanup) or when touched.
--]]
local function end_all(keys, argv)
  local index, meta, ended, keep = keys[1], keys[2], keys[3], argv[1]
  local now = now_ms()
  local keep_score, keep_meta = false, false
  if keep ~= '' then
    keep_score = redis.call('ZSCORE', index, keep)
    if keep_score then
      keep_meta = redis.call('HGET', meta, keep)
      redis.call('ZREM', index, keep)
    end
  end
  local count = redis.call('ZCOUNT', index, '(' .. fmt(now), '+inf')
  if redis.call('EXISTS', index) == 1 then
    redis.call('ZUNIONSTORE', ended, 2, ended, index, 'AGGREGATE', 'MAX')
    redis.call('ZREMRANGEBYSCORE', ended, '-inf', now)
    expire_with_last(ended, ended)
  end
  redis.call('DEL', index, meta)
  if keep_score then
    redis.call('ZADD', index, keep_score, keep)
    if keep_meta then
      redis.call('HSET', meta, keep, keep_meta)
    end
    refresh_index(index, meta, now)
  end
  return count
end

--[[
stats (no-writes)
  KEYS  index, meta
  ARGV  since (unix s): count sessions last seen at or after it
  Reply {live sessions, of which seen since}
--]]
local function stats(keys, argv)
  local now = now_ms()
  local live = redis.call('ZCOUNT', keys[1], '(' .. fmt(now), '+inf')
  local since, active = tonumber(argv[1]), 0
  if live > 0 then
    for _, v in ipairs(redis.call('HVALS', keys[2])) do
      if tonumber(string.sub(v, 1, 10)) >= since then
        active = active + 1
      end
    end
  end
  return {live, math.min(active, live)}
end

--[[
purge
  KEYS  ended, session hash of each member below
  ARGV  members of the ended set
  Reply the number of session hashes deleted. The members leave the set.
--]]
local function purge(keys, argv)
  local deleted = 0
  for n = 1, #argv do
    deleted = deleted + redis.call('DEL', keys[n + 1])
    redis.call('ZREM', keys[1], argv[n])
  end
  return deleted
end

--[[
sweep
  KEYS  index, meta, then the session hash of each member below
  ARGV  dry_run ('1' or '0'), members of the index
  Reply {expired, vanished, live}: members whose expiry passed, members
        whose session hash is gone (evicted, for example), and the rest.
        Unless dry_run, the first two kinds leave the index and metadata.
--]]
local function sweep(keys, argv)
  local index, meta = keys[1], keys[2]
  local now = now_ms()
  local expired, vanished, live = 0, 0, 0
  local stale = {}
  if #argv > 1 then
    local scores = redis.call('ZMSCORE', index, unpack(argv, 2))
    for n = 2, #argv do
      local score = scores[n - 1]
      if score then
        if tonumber(score) <= now then
          expired = expired + 1
          stale[#stale + 1] = argv[n]
        elseif redis.call('EXISTS', keys[n + 1]) == 0 then
          vanished = vanished + 1
          stale[#stale + 1] = argv[n]
        else
          live = live + 1
        end
      end
    end
  end
  if argv[1] ~= '1' and #stale > 0 then
    call_chunked('ZREM', index, stale, 1, #stale)
    call_chunked('HDEL', meta, stale, 1, #stale)
    local last = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
    if #last > 0 then
      redis.call('PEXPIREAT', index, fmt(tonumber(last[2])))
      redis.call('PEXPIREAT', meta, fmt(tonumber(last[2])))
    else
      redis.call('DEL', meta)
    end
  end
  return {expired, vanished, live}
end

local V = '__VERSION__'
local function register(name, callback, flags)
  redis.register_function{function_name = 'charon_' .. V .. '_' .. name,
    callback = callback, flags = flags or {}}
end
register('load', load, {'allow-oom'})
register('exists', exists, {'no-writes'})
register('save', save)
register('cycle', cycle)
register('delete', delete, {'allow-oom'})
register('list', list, {'no-writes'})
register('end_one', end_one, {'allow-oom'})
register('end_all', end_all, {'allow-oom'})
register('stats', stats, {'no-writes'})
register('purge', purge, {'allow-oom'})
register('sweep', sweep)
