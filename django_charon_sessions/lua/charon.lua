#!lua name=charon___VERSION__
--[[
django-charon-sessions: the Redis function library.

The Python side replaces __VERSION__ with a hash of this file before it calls
FUNCTION LOAD, so every release has its own library name and function names,
and two releases can share one Redis during a rolling deploy. Each function
has exactly one caller in django_charon_sessions/calls.py, the only code that
knows its KEYS and ARGV.

Key schema (P is the KEY_PREFIX setting, T a 15 character tag, M a member):

  P:{T}rB     STRING  one session record (B: M's 13 bytes in base64url, 18
                      characters): a header this library reads, then
                      a body sealed by Python (one MAC over the member, the
                      user id, the creation time and the serialized session):
                        SSSSSSSSSS,V,C,N:U<sealed>
                      S last seen (unix s, 10 digits: rewritten in place),
                      V version (+1 on every write that replaces the record),
                      C creation time (unix s), U the user id, N bytes long
                      (N = 0: anonymous). M is a hash of the cookie value,
                      never the cookie itself. T is the user's tag for a
                      signed-in session and random for an anonymous one.
  P:{T}:i     ZSET    the user's index: member M, score = expiry in unix ms.
  P:{T}:m     HASH    the user's session metadata: M -> "LLLLLLLLLL|CCCCCCCCCC|rest":
                      last seen and created (unix s, 10 digits each), rest
                      opaque to this library (the request facts).
  P:{T}:x     ZSET    ended sessions whose record may still exist: member M,
                      score = the record's expiry in unix ms. Cleanup deletes
                      those records (purge); the key expires with its last entry.
  P:{T}:l     ZSET    the import ledger: sessions sessions_import brought into
                      this slot, member M, score = the source's expiry (unix
                      ms) as the last import pass saw it. Only import and
                      retract use it (see "Imports" below).
  P:{S}:s     ZSET    site-wide session activity of one hash slot: member
                      T .. M .. U (tag, member, user id), score = last seen
                      (unix ms). S is a slot tag: a string whose hash slot is
                      that of every T it serves (Python computes it), so these
                      keys are written in the same call as the session's own.
                      Entries older than the window are dropped on write; the
                      key expires a window after its last write.
  P:{S}:u     ZSET    site-wide user activity of one hash slot: member U,
                      score = last seen (unix ms); same rules, its own window.
                      Both are kept only with the SITE_ACTIVITY setting on:
                      then callers pass them to load, create and cycle.

The keys of one tag share a hash slot, so every call below touches exactly
one slot and runs unchanged on Redis Cluster. Every key a function touches is
named in KEYS. Every key a function creates gets an expiry in the same call.

A signed-in session is alive only while its member is in its user's index:
ending all of a user's sessions moves the index into the ended set in one
step, and a record whose member is missing is treated as gone (and deleted)
the next time any function sees it. That is what keeps an ended session dead.

Writes that replace a record carry the version the caller loaded. Liveness is
checked first (a matching version proves nothing once the session was
ended), then the version: on a mismatch nothing is written and the reply is
the current record, so the caller can re-apply its changes and try again.
The "last seen" update does not change the version.

Replies used below: 1 done (create: 1 + the number of sessions ended by the
per-user limit), 0 the key already exists (create, cycle), -1 the session is
gone (deleted, expired or ended; nothing written), -2 its absolute lifetime
is over (it is deleted), a string: the current record (version conflict).
--]]

-- Bound the work a single call does on behalf of expired index entries;
-- the cleanup command takes care of any remainder.
local PRUNE_LIMIT = 64
-- Lua's stack limits how many values unpack() may spread; stay well below.
local CHUNK = 4000

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function fmt(n)
  return string.format('%d', math.floor(n))
end

-- Call cmd(key, list[first..last]) in chunks.
local function call_chunked(cmd, key, list, first, last)
  while first <= last do
    local stop = math.min(last, first + CHUNK - 1)
    redis.call(cmd, key, unpack(list, first, stop))
    first = stop + 1
  end
end

-- Read a record's header: seen, version, created, user; false for anything
-- else (Python rejects it as tampered). The sealed part is never copied.
local function parse(value)
  local seen, version, created, n, at =
    string.match(value, '^(%d%d%d%d%d%d%d%d%d%d),(%d+),(%d+),(%d+):()')
  if not at then
    return false
  end
  local user = ''
  if n ~= '0' then
    user = string.sub(value, at, at + tonumber(n) - 1)
  end
  return tonumber(seen), tonumber(version), tonumber(created), user
end

local function meta_value(seen_s, created_s, rest)
  return string.format('%010d|%010d|', math.floor(seen_s), math.floor(created_s)) .. rest
end

-- Give key an expiry of at least `at` (unix ms) without lowering one it has:
-- NX sets it on a key that has none, GT only ever raises it.
local function expire_at_least(key, at)
  redis.call('PEXPIREAT', key, at, 'NX')
  redis.call('PEXPIREAT', key, at, 'GT')
end

-- Note a signed-in session (and its user) as active at `now` (unix ms) in the
-- activity sets of its slot, dropping entries that left their windows (ms).
-- Without the sets (SITE_ACTIVITY off: the caller passed no such KEYS) nothing.
local function note_active(index, activity, users, member, user, now, window, users_window)
  if not activity then
    return
  end
  local tag = string.match(index, '{([^}]*)}')
  redis.call('ZADD', activity, fmt(now), tag .. member .. user)
  redis.call('ZREMRANGEBYSCORE', activity, '-inf', '(' .. fmt(now - window))
  expire_at_least(activity, fmt(now + window))
  redis.call('ZADD', users, fmt(now), user)
  redis.call('ZREMRANGEBYSCORE', users, '-inf', '(' .. fmt(now - users_window))
  expire_at_least(users, fmt(now + users_window))
end

local function unindex(index, meta, member)
  redis.call('ZREM', index, member)
  redis.call('HDEL', meta, member)
end

-- Drop up to PRUNE_LIMIT index entries whose expiry has passed.
local function prune(index, meta, now)
  local stale = redis.call('ZRANGEBYSCORE', index, '-inf', now, 'LIMIT', 0, PRUNE_LIMIT)
  if #stale > 0 then
    redis.call('ZREM', index, unpack(stale))
    redis.call('HDEL', meta, unpack(stale))
  end
end

-- Set the index and metadata expiry to the newest entry's (or delete both).
local function expire_with_last(index, meta)
  local last = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
  if #last > 0 then
    local at = fmt(tonumber(last[2]))
    redis.call('PEXPIREAT', index, at)
    redis.call('PEXPIREAT', meta, at)
  else
    redis.call('DEL', index, meta)
  end
end

-- Move members (with their index scores) from the index to the ended set.
local function bury(index, meta, ended, members)
  local latest = 0
  for _, m in ipairs(members) do
    local score = redis.call('ZSCORE', index, m)
    if score then
      redis.call('ZADD', ended, score, m)
      latest = math.max(latest, tonumber(score))
    end
    unindex(index, meta, m)
  end
  if latest > 0 then
    expire_at_least(ended, fmt(latest))
  end
end

-- The idle TTL asked for, shortened to what is left of the absolute
-- lifetime. Returns milliseconds; zero or less means "already over".
local function effective_ttl(created, ttl, absolute, now)
  if absolute > 0 then
    local left = (created + absolute) * 1000 - now
    if left < ttl then
      return left
    end
  end
  return ttl
end

-- The value stored at record: false when there is none, '' when it holds
-- another type (written by hand: garbage to verify, not an error that fails
-- the whole call).
local function read_record(record)
  local value = redis.pcall('GET', record)
  if type(value) == 'table' and value.err then
    if string.find(tostring(value.err), 'WRONGTYPE', 1, true) then
      return ''
    end
    error(value)  -- anything else (an ACL refusal, say) stays an error
  end
  return value
end

-- The record of a live session: value, seen, version, created, user, and
-- the index score of a signed-in one (false for an anonymous one); false
-- when there is none, deleting a record whose user's index no longer has it.
-- A record without a readable header comes back with false for the rest.
local function live_record(record, index, meta, member)
  local value = read_record(record)
  if not value then
    return false
  end
  local seen, version, created, user = parse(value)
  if not seen then
    return value, false, false, false, false, false
  end
  local score = false
  if user ~= '' then
    score = redis.call('ZSCORE', index, member)
    if not score then
      redis.call('DEL', record)
      redis.call('HDEL', meta, member)
      return false
    end
  end
  return value, seen, version, created, user, score
end

-- The live record of `version`: true, seen, created, user; or false and the
-- reply for the caller: -1 (gone) or the current record (another version).
local function at_version(record, index, meta, member, version)
  local value, seen, stored_version, created, user = live_record(record, index, meta, member)
  if not value then
    return false, -1
  end
  if stored_version ~= version then
    return false, value
  end
  return true, seen, created, user
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

-- Index a new signed-in session: entry, metadata, expiries, limit.
local function index_new(index, meta, ended, member, at, meta_entry, limit, now)
  prune(index, meta, now)
  redis.call('ZADD', index, at, member)
  redis.call('HSET', meta, member, meta_entry)
  expire_at_least(index, at)
  expire_at_least(meta, at)
  return enforce_limit(index, meta, ended, limit, member, now)
end

--[[
load
  KEYS  record, index, meta[, session activity, user activity (of the slot)]
  ARGV  member, touch_interval (s, 0 = never), absolute_max_age (s, 0 = none),
        request facts ('' = keep the stored ones)[, activity window (ms),
        user activity window (ms)]: the activity sets are passed only with
        SITE_ACTIVITY on
  Reply the record, or nil when there is no live session.
  Side effects: deletes a record that was ended or outlived its absolute
  lifetime; at most once per touch_interval updates "last seen" (in the
  record's header, the metadata and any activity sets) of a signed-in session.
--]]
local function load(keys, argv)
  local record, index, meta, member = keys[1], keys[2], keys[3], argv[1]
  local touch, absolute, facts = tonumber(argv[2]), tonumber(argv[3]), argv[4]
  local value, seen, _, created, user, score = live_record(record, index, meta, member)
  if not seen then
    return value  -- nil, or a record without a header (Python reports it)
  end
  local now = nil
  if absolute > 0 then
    now = now_ms()
    if (created + absolute) * 1000 <= now then
      redis.call('DEL', record)
      unindex(index, meta, member)
      return false
    end
  end
  if user ~= '' and touch > 0 then
    now = now or now_ms()
    local now_s = math.floor(now / 1000)
    -- The copy in the header came with the record: most loads stop here.
    if seen + touch <= now_s then
      note_active(index, keys[4], keys[5], member, user, now, tonumber(argv[5]), tonumber(argv[6]))
      if facts == '' then
        local old = redis.call('HGET', meta, member)
        facts = old and string.sub(old, 23) or ''
      end
      redis.call('HSET', meta, member, meta_value(now_s, created, facts))
      -- The metadata may have been evicted: never leave it without expiry.
      expire_at_least(meta, score)
      redis.call('SETRANGE', record, 0, string.format('%010d', now_s))
      value = string.format('%010d', now_s) .. string.sub(value, 11)
    end
  end
  return value
end

--[[
exists (no-writes)
  KEYS  record, index
  ARGV  member
  Reply 1 when the session is alive, else 0.
--]]
local function exists(keys, argv)
  local value = read_record(keys[1])
  if not value then
    return 0
  end
  local seen, _, _, user = parse(value)
  if seen and user ~= '' and not redis.call('ZSCORE', keys[2], argv[1]) then
    return 0
  end
  return 1
end

--[[
create
  KEYS  record, index, meta, ended[, session activity, user activity]
  ARGV  member, ttl_ms, user ('' anonymous), created (unix s), record (version
        1, with that user and creation time), request facts, absolute_max_age
        (s, 0 = none), per-user limit (0 = none)[, activity window (ms), user
        activity window (ms)]: without the activity keys (SITE_ACTIVITY off,
        the importer) the session is not noted as active
  Reply 1 + the number of the user's sessions ended by the limit; 0 the key
        exists (nothing written); -2 the absolute lifetime is already over.
  Never overwrites a record.
--]]
local function create(keys, argv)
  local record, index, meta, ended = keys[1], keys[2], keys[3], keys[4]
  local member, ttl, user, created = argv[1], tonumber(argv[2]), argv[3], tonumber(argv[4])
  local value, facts, absolute, limit = argv[5], argv[6], tonumber(argv[7]), tonumber(argv[8])
  local now = now_ms()
  ttl = effective_ttl(created, ttl, absolute, now)
  if ttl <= 0 then
    return -2
  end
  local now_s = math.floor(now / 1000)
  if not redis.call('SET', record, value, 'NX', 'PX', fmt(ttl)) then
    return 0
  end
  if user == '' then
    return 1
  end
  local at = fmt(now + ttl)
  note_active(index, keys[5], keys[6], member, user, now, tonumber(argv[9]), tonumber(argv[10]))
  return 1 + index_new(index, meta, ended, member, at, meta_value(now_s, created, facts), limit, now)
end

--[[
save
  KEYS  record, index, meta
  ARGV  member, version, ttl_ms, user ('' anonymous), record (of version + 1,
        same creation time; '' keeps the stored one and only moves its
        expiry), absolute_max_age (s)
  Reply 1 saved; -1 gone (nothing written); -2 absolute lifetime over (the
        session is deleted); the current record when its version is not the
        one given (nothing written).
  An update never creates an index entry: a user id that was not indexed
  stays out of the index (and the next load treats the record as ended).
--]]
local function save(keys, argv)
  local record, index, meta, member = keys[1], keys[2], keys[3], argv[1]
  local version, ttl, user, record_value = tonumber(argv[2]), tonumber(argv[3]), argv[4], argv[5]
  local absolute = tonumber(argv[6])
  local ok, reply, created, old_user = at_version(record, index, meta, member, version)
  if not ok then
    return reply
  end
  local now = now_ms()
  ttl = effective_ttl(created, ttl, absolute, now)
  if ttl <= 0 then
    redis.call('DEL', record)
    unindex(index, meta, member)
    return -2
  end
  if record_value == '' then
    redis.call('PEXPIRE', record, fmt(ttl))
    user = old_user
  else
    redis.call('SET', record, record_value, 'PX', fmt(ttl))
  end
  if user ~= '' then
    local at = fmt(now + ttl)
    redis.call('ZADD', index, 'XX', at, member)
    -- Both keys exist with an expiry (their creator set it): GT is enough.
    redis.call('PEXPIREAT', index, at, 'GT')
    redis.call('PEXPIREAT', meta, at, 'GT')
  elseif old_user ~= '' then
    unindex(index, meta, member)
  end
  return 1
end

--[[
cycle
  KEYS  old record, new record, index, meta[, session activity, user
        activity] (one tag, so one slot)
  ARGV  old member, new member, version, ttl_ms, user, record (sealed for the
        new member, same creation time), absolute_max_age (s)[, activity
        window (ms), user activity window (ms)] (as for create)
  Reply 1 done; 0 the new key exists (nothing written); -1 the old session
        is gone (nothing created); -2 absolute lifetime over (both gone);
        the current old record on a version conflict (nothing written).
  The new record keeps the old one's creation time and metadata.
--]]
local function cycle(keys, argv)
  local old, new, index, meta = keys[1], keys[2], keys[3], keys[4]
  local old_member, new_member, version = argv[1], argv[2], tonumber(argv[3])
  local ttl, user, new_value, absolute = tonumber(argv[4]), argv[5], argv[6], tonumber(argv[7])
  local ok, seen, created, old_user = at_version(old, index, meta, old_member, version)
  if not ok then
    return seen  -- the reply
  end
  if redis.call('EXISTS', new) == 1 then
    return 0
  end
  local now = now_ms()
  ttl = effective_ttl(created, ttl, absolute, now)
  redis.call('DEL', old)
  local entry = false
  if old_user ~= '' then
    entry = redis.call('HGET', meta, old_member)
    unindex(index, meta, old_member)
  end
  if ttl <= 0 then
    return -2
  end
  redis.call('SET', new, new_value, 'PX', fmt(ttl))
  if user ~= '' then
    local at = fmt(now + ttl)
    redis.call('ZADD', index, at, new_member)
    redis.call('HSET', meta, new_member, entry or meta_value(seen, created, ''))
    expire_at_least(index, at)
    expire_at_least(meta, at)
    note_active(index, keys[5], keys[6], new_member, user, now, tonumber(argv[8]), tonumber(argv[9]))
  end
  return 1
end

--[[
delete
  KEYS  record, index, meta
  ARGV  member, version ('' deletes whatever is there)
  Reply 1 a record was deleted, 0 there was none (or, with a version, -1:
        the session is gone); with a version that is not the stored one, the
        current record (nothing deleted). The index entry and metadata go too.
--]]
local function delete(keys, argv)
  local record, index, meta, member, version = keys[1], keys[2], keys[3], argv[1], argv[2]
  if version ~= '' then
    local ok, reply = at_version(record, index, meta, member, tonumber(version))
    if not ok then
      return reply
    end
  end
  local removed = redis.call('DEL', record)
  unindex(index, meta, member)
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
  KEYS  record, index, meta
  ARGV  member
  Reply 1 if the session was a live session of this index (now ended and
        deleted), else 0. A session of another user is never touched.
--]]
local function end_one(keys, argv)
  local record, index, meta, member = keys[1], keys[2], keys[3], argv[1]
  local score = redis.call('ZSCORE', index, member)
  if not score then
    return 0
  end
  local now = now_ms()
  redis.call('DEL', record)
  unindex(index, meta, member)
  expire_with_last(index, meta)
  return tonumber(score) > now and 1 or 0
end

--[[
end_all
  KEYS  index, meta, ended
  ARGV  member to keep ('' for none)
  Reply the number of live sessions ended. All of them leave the index in
        this one step, so no save or cycle that starts later can keep them
        alive; their records are deleted by purge (cleanup) or when touched.
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
    local last = redis.call('ZRANGE', ended, -1, -1, 'WITHSCORES')
    if #last > 0 then
      redis.call('PEXPIREAT', ended, fmt(tonumber(last[2])))
    end
  end
  redis.call('DEL', index, meta)
  if keep_score then
    redis.call('ZADD', index, keep_score, keep)
    if keep_meta then
      redis.call('HSET', meta, keep, keep_meta)
    end
    expire_with_last(index, meta)
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
      -- Unreadable metadata (written by hand) counts as not seen lately.
      local seen = tonumber(string.sub(v, 1, 10))
      if seen and seen >= since then
        active = active + 1
      end
    end
  end
  return {live, math.min(active, live)}
end

--[[
activity (no-writes)
  KEYS  session activity, user activity (of one slot)
  ARGV  since (unix ms), ... : up to three moments
  Reply {sessions seen since each moment ..., users seen since each ...}
--]]
local function activity(keys, argv)
  local out = {}
  for _, key in ipairs({keys[1], keys[2]}) do
    for n = 1, #argv do
      out[#out + 1] = redis.call('ZCOUNT', key, argv[n], '+inf')
    end
  end
  return out
end

--[[
purge
  KEYS  ended, the record of each member below
  ARGV  members of the ended set
  Reply the number of records deleted. The members leave the set.
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
  KEYS  index, meta, then the record of each member below
  ARGV  dry_run ('1' or '0'), members of the index
  Reply {expired, vanished, live}: members whose expiry passed, members
        whose record is gone (evicted, for example), and the rest.
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
    expire_with_last(index, meta)
  end
  return {expired, vanished, live}
end

--[[
Imports (sessions_import)

An imported session keeps the 32 character key of Django's own engines. Each
pass of the import may run again at any time, so it must never bring back a
session that was ended or moved here since an earlier pass copied it. The
ledger P:{T}:l of the session's slot records every member an import wrote
there; while that entry exists, the import writes that member again only if
its record is still live. A record that is gone was deleted, ended, moved
to a new key by cycle_key(), cut by the absolute lifetime, or expired: the
engine's own functions need not know about imports for this to hold. The
ledger key lives at least keep_ms after the last pass (the importer passes
SESSION_COOKIE_AGE), longer than any pass sequence needs.

A record as imported has version 1; the first save that changes it makes it
2. Only such a never-rewritten copy follows the source: a pass raises its
expiry to the source's, and retract deletes it when its row disappeared.
--]]

--[[
import
  KEYS  record, index, meta, ended, ledger (all of the session's slot)
  ARGV  member, ttl_ms (the source's remaining lifetime), user ('' anonymous),
        created (unix s), record (version 1, with that user and creation
        time), absolute_max_age (s, 0 = none), keep_ms (the ledger key lives
        at least this long)
  Reply 1 imported; 0 a live copy is there (nothing written to it, except
        that a copy the engine never rewrote gets the source's expiry if that
        is later); -1 refused: imported before and gone since; -2 the absolute
        lifetime is already over (nothing written).
  The ledger entry is added or raised to the source's expiry in every case
  but -2.
--]]
local function import(keys, argv)
  local record, index, meta, ended, ledger = keys[1], keys[2], keys[3], keys[4], keys[5]
  local member, ttl, keep = argv[1], tonumber(argv[2]), tonumber(argv[7])
  local now = now_ms()
  local at = fmt(now + ttl)
  local value, _, version, _, _, score = live_record(record, index, meta, member)
  local reply
  if value then
    reply = 0
    if version == 1 then
      redis.call('PEXPIREAT', record, at, 'GT')
      if score then
        redis.call('ZADD', index, 'XX', 'GT', at, member)
        expire_at_least(index, at)
        expire_at_least(meta, at)
      end
    end
  elseif redis.call('ZSCORE', ledger, member) then
    reply = -1
  else
    reply = create({record, index, meta, ended},
      {member, argv[2], argv[3], argv[4], argv[5], '', argv[6], 0})
    if reply < 0 then
      return reply
    end
  end
  redis.call('ZADD', ledger, 'GT', at, member)
  expire_at_least(ledger, fmt(math.max(now + ttl, now + keep)))
  return reply
end

--[[
retract
  KEYS  record, index, meta, ledger
  ARGV  member
  Reply 1 the imported copy was deleted (its row left the source before its
        expiry: signed out, or moved to a new key, under the old engine);
        0 there is no live copy; 2 kept: the engine has rewritten it since;
        3 kept: the source's expiry as last seen has passed (the row expired,
        nobody ended it); -1 not imported into this slot (nothing touched).
  The ledger entry stays, so the session is never imported again.
--]]
local function retract(keys, argv)
  local record, index, meta, ledger, member = keys[1], keys[2], keys[3], keys[4], argv[1]
  local known = redis.call('ZSCORE', ledger, member)
  if not known then
    return -1
  end
  local value, seen, version = live_record(record, index, meta, member)
  if not value or not seen then
    return 0
  end
  if version ~= 1 then
    return 2
  end
  if tonumber(known) <= now_ms() then
    return 3
  end
  redis.call('DEL', record)
  unindex(index, meta, member)
  return 1
end

local V = '__VERSION__'
local function register(name, callback, flags)
  redis.register_function{function_name = 'charon_' .. V .. '_' .. name,
    callback = callback, flags = flags or {}}
end
register('load', load, {'allow-oom'})
register('exists', exists, {'no-writes'})
register('create', create)
register('save', save)
register('cycle', cycle)
register('delete', delete, {'allow-oom'})
register('list', list, {'no-writes'})
register('end_one', end_one, {'allow-oom'})
register('end_all', end_all, {'allow-oom'})
register('stats', stats, {'no-writes'})
register('activity', activity, {'no-writes'})
register('purge', purge, {'allow-oom'})
register('sweep', sweep)
register('import', import)
register('retract', retract, {'allow-oom'})
