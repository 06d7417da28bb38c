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
                    Every other field is one session key (UTF-8) whose value
                    is a signature followed by the serialized value. The
                    byte 0xFF never occurs in UTF-8, so the two cannot clash.
  P:{T}:i     ZSET  the user's index: member M, score = expiry in unix ms.
  P:{T}:m     HASH  the user's session metadata: M -> "SSSSSSSSSS|rest",
                    where S is "last seen" in unix seconds (10 digits) and
                    rest is opaque to this library.

The three keys of one tag share a hash slot, so every call below touches
exactly one slot and runs unchanged on Redis Cluster. Every key a function
touches is named in KEYS.

An authenticated session is alive only while its member is in the index:
ending all of a user's sessions deletes the index, and a session whose
member is missing is treated as gone (and deleted) the next time any
function sees it. That is what keeps a killed session dead.

Return codes used below: 1 done, 0 key already exists (create collision),
-1 session gone (deleted, expired or ended), -2 absolute lifetime over.
--]]

local META = '\255'
local F_CREATED = META .. 'c'
local F_USER = META .. 'u'
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

local function last_seen_value(now_s, rest)
  return string.format('%010d', math.floor(now_s)) .. '|' .. rest
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
  if #last == 0 then
    redis.call('DEL', index, meta)
  else
    local at = fmt(tonumber(last[2]))
    redis.call('PEXPIREAT', index, at)
    redis.call('PEXPIREAT', meta, at)
  end
  return #stale
end

local function unindex(index, meta, member)
  redis.call('ZREM', index, member)
  redis.call('HDEL', meta, member)
end

-- A session is alive when its hash exists and, if it belongs to a user,
-- its member is still in that user's index. Returns alive, user id.
local function alive(session, index, member)
  if redis.call('EXISTS', session) == 0 then
    return false, false
  end
  local user = redis.call('HGET', session, F_USER)
  if user and not redis.call('ZSCORE', index, member) then
    return false, user
  end
  return true, user
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
local function effective_ttl(session, ttl, absolute, now)
  if absolute > 0 then
    local created = tonumber(redis.call('HGET', session, F_CREATED) or '0')
    local left = (created + absolute) * 1000 - now
    if left < ttl then
      return left
    end
  end
  return ttl
end

-- Set TTL and index state of a session whose fields are written.
-- meta_rest is the metadata to store for a new index entry ('' keeps an
-- existing entry and its last-seen time).
local function finish(session, index, meta, member, ttl, user, old_user, meta_rest, now)
  redis.call('PEXPIRE', session, fmt(ttl))
  if user ~= '' then
    if user ~= old_user then
      redis.call('HSET', session, F_USER, user)
    end
    redis.call('ZADD', index, fmt(now + ttl), member)
    if meta_rest ~= '' or redis.call('HEXISTS', meta, member) == 0 then
      redis.call('HSET', meta, member, last_seen_value(now / 1000, meta_rest))
    end
    refresh_index(index, meta, now)
  elseif old_user then
    redis.call('HDEL', session, F_USER)
    unindex(index, meta, member)
    refresh_index(index, meta, now)
  end
end

--[[
load
  KEYS  session, index, meta
  ARGV  member, touch_interval (s, 0 = never), absolute_max_age (s, 0 = none)
  Reply nil when there is no live session, else HGETALL of the session.
  Side effects: deletes a session that was ended or outlived its absolute
  lifetime; updates "last seen" when it is older than touch_interval.
--]]
local function load(keys, argv)
  local session, index, meta = keys[1], keys[2], keys[3]
  local member = argv[1]
  local touch, absolute = tonumber(argv[2]), tonumber(argv[3])
  local fields = redis.call('HGETALL', session)
  if #fields == 0 then
    return false
  end
  local user, created = false, 0
  for i = 1, #fields, 2 do
    local f = fields[i]
    if f == F_USER then
      user = fields[i + 1]
    elseif f == F_CREATED then
      created = tonumber(fields[i + 1])
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
      local seen = redis.call('HGET', meta, member)
      now = now or now_ms()
      if seen and tonumber(string.sub(seen, 1, 10)) + touch <= now / 1000 then
        redis.call('HSET', meta, member, last_seen_value(now / 1000, string.sub(seen, 12)))
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
  KEYS  session, index, meta
  ARGV  mode, member, ttl_ms, user, meta_rest, absolute_max_age (s),
        nset, field, value, ..., ndel, field, ...
        mode 'c' creates and never overwrites; 'u' updates the given fields;
        'r' replaces all data fields. user is '' for an anonymous session.
  Reply 1 saved, 0 exists (create only), -1 gone (update only; nothing is
        written), -2 absolute lifetime over (the session is deleted).
--]]
local function save(keys, argv)
  local session, index, meta = keys[1], keys[2], keys[3]
  local mode, member, ttl, user, meta_rest = argv[1], argv[2], tonumber(argv[3]), argv[4], argv[5]
  local absolute = tonumber(argv[6])
  local now = now_ms()
  local old_user = false
  if mode == 'c' then
    if redis.call('EXISTS', session) == 1 then
      return 0
    end
    redis.call('HSET', session, F_CREATED, fmt(now / 1000))
  else
    local ok
    ok, old_user = alive(session, index, member)
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
  write_fields(session, argv, 7)
  ttl = effective_ttl(session, ttl, absolute, now)
  if ttl <= 0 then
    redis.call('DEL', session)
    if old_user then
      unindex(index, meta, member)
      refresh_index(index, meta, now)
    end
    return -2
  end
  finish(session, index, meta, member, ttl, user, old_user, meta_rest, now)
  return 1
end

--[[
cycle
  KEYS  old session, new session, index, meta (one tag, so one slot)
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
  local ok, old_user = alive(old, index, old_member)
  if not ok and argv[3] == '1' then
    redis.call('DEL', old)
    unindex(index, meta, old_member)
    return -1
  end
  local created = fmt(now / 1000)
  if ok then
    created = redis.call('HGET', old, F_CREATED) or created
    local seen = redis.call('HGET', meta, old_member)
    if meta_rest == '' and seen then
      meta_rest = string.sub(seen, 12)
    end
  end
  redis.call('DEL', old)
  if old_user then
    unindex(index, meta, old_member)
  end
  redis.call('HSET', new, F_CREATED, created)
  write_fields(new, argv, 8)
  ttl = effective_ttl(new, ttl, absolute, now)
  if ttl <= 0 then
    redis.call('DEL', new)
    refresh_index(index, meta, now)
    return -2
  end
  finish(new, index, meta, new_member, ttl, user, false, meta_rest, now)
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
prune
  KEYS  index, meta
  ARGV  (none)
  Reply the number of expired index entries removed (at most PRUNE_LIMIT
        per call; call again while the reply equals that limit).
--]]
local function prune(keys, argv)
  return refresh_index(keys[1], keys[2], now_ms())
end

local V = '__VERSION__'
redis.register_function{function_name = 'charon_' .. V .. '_load', callback = load,
  flags = {'allow-oom'}}
redis.register_function{function_name = 'charon_' .. V .. '_exists', callback = exists,
  flags = {'no-writes'}}
redis.register_function('charon_' .. V .. '_save', save)
redis.register_function('charon_' .. V .. '_cycle', cycle)
redis.register_function{function_name = 'charon_' .. V .. '_delete', callback = delete,
  flags = {'allow-oom'}}
redis.register_function('charon_' .. V .. '_prune', prune)
