// The Lua scripts behind the Redis ClusterState: each read-check-write runs atomically in Redis.
// Key names are documented in docs/cluster-state.md; `prefix` is the configured key prefix.
//
// Scripts build heartbeat and per-instance key names from stored data (an owner's instance),
// which a single Redis (or a Sentinel-managed primary) allows; Redis Cluster would not.
import type { Redis } from 'ioredis'

/** A session owner as stored: `{"instance":…,"connection":…}`; anything else counts as absent. */
const DECODE_OWNER = `
local function decode_owner(raw)
  if not raw then return nil end
  local ok, o = pcall(cjson.decode, raw)
  if not ok or type(o) ~= 'table' or type(o.instance) ~= 'string' or type(o.connection) ~= 'string' then
    return nil
  end
  return o
end
local function alive(prefix, instance)
  return redis.call('EXISTS', prefix .. 'instance:' .. instance .. ':alive') == 1
end
`

/**
 * KEYS: session. ARGV: prefix, instance, connection, tenant, device.
 * Stores the new owner and returns the previous one (JSON) unless it is the same owner or its
 * instance is dead; a live previous owner on another instance gets a takeover notice on its channel.
 */
const CLAIM = `${DECODE_OWNER}
local prefix, instance, connection = ARGV[1], ARGV[2], ARGV[3]
local prev = decode_owner(redis.call('GET', KEYS[1]))
redis.call('SET', KEYS[1], cjson.encode({ instance = instance, connection = connection }))
if not prev or (prev.instance == instance and prev.connection == connection) then return false end
-- The calling instance is alive by definition, even if its heartbeat lapsed for a moment.
if prev.instance ~= instance and not alive(prefix, prev.instance) then return false end
local previous = { instance = prev.instance, connection = prev.connection }
if prev.instance ~= instance then
  redis.call('PUBLISH', prefix .. 'instance:' .. prev.instance, cjson.encode({
    tenant = ARGV[4], device = ARGV[5], previous = previous,
    by = { instance = instance, connection = connection } }))
end
return cjson.encode(previous)
`

/** KEYS: session. ARGV: instance, connection. Compare-and-delete: only the holder may release. */
const RELEASE = `${DECODE_OWNER}
local cur = decode_owner(redis.call('GET', KEYS[1]))
if cur and cur.instance == ARGV[1] and cur.connection == ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`

/**
 * KEYS: session. ARGV: prefix, calling instance. The owner (JSON), or nil; an owner on a dead
 * instance (never the caller's) is dropped.
 */
const OWNER = `${DECODE_OWNER}
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local cur = decode_owner(raw)
if not cur or (cur.instance ~= ARGV[2] and not alive(ARGV[1], cur.instance)) then
  redis.call('DEL', KEYS[1])
  return false
end
return cjson.encode({ instance = cur.instance, connection = cur.connection })
`

/**
 * KEYS: routes (a set of instance ids). ARGV: prefix, calling instance. Returns the live members and
 * removes those whose heartbeat lapsed (routes a crashed instance left behind).
 */
const ROUTES = `${DECODE_OWNER}
local live = {}
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if member == ARGV[2] or alive(ARGV[1], member) then
    table.insert(live, member)
  else
    redis.call('SREM', KEYS[1], member)
  end
end
return live
`

/**
 * KEYS: bucket. ARGV: rate per second, burst, cost. Returns {allowed 0|1, retryAfterMs}.
 * Time is Redis's own (TIME), so instances with skewed clocks share one bucket consistently.
 * A refusal writes nothing; the key expires once the bucket would be full again (an absent
 * bucket is a full one), so idle buckets vanish.
 */
const TAKE = `
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
end
if tokens + 1e-9 < cost then
  -- +1 ms: a caller's timer set to retryAfterMs may fire up to 1 ms early.
  return { 0, math.ceil((cost - tokens) * 1000 / rate) + 1 }
end
tokens = tokens - cost
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.ceil((burst - tokens) * 1000 / rate) + 1000))
return { 1, 0 }
`

/**
 * Slots: KEYS[1] is the scope's count hash (instance → holders), KEYS[2] this instance's holder
 * set for the scope. live_total sums the counts of live instances (the caller's always counts) and
 * drops dead ones (their count field and their holder set) on the way.
 */
const LIVE_TOTAL = `
local function live_total(counts, prefix, scope, self)
  local total = 0
  local entries = redis.call('HGETALL', counts)
  for i = 1, #entries, 2 do
    local instance = entries[i]
    if instance == self or redis.call('EXISTS', prefix .. 'instance:' .. instance .. ':alive') == 1 then
      total = total + (tonumber(entries[i + 1]) or 0)
    else
      redis.call('HDEL', counts, instance)
      redis.call('DEL', prefix .. 'slots@' .. instance .. ':' .. scope)
    end
  end
  return total
end
`

/** KEYS: counts, holders. ARGV: prefix, instance, holder, limit, scope. 1 if held (now or already). */
const ACQUIRE = `${LIVE_TOTAL}
if redis.call('SISMEMBER', KEYS[2], ARGV[3]) == 1 then return 1 end
if live_total(KEYS[1], ARGV[1], ARGV[5], ARGV[2]) >= tonumber(ARGV[4]) then return 0 end
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
return 1
`

/** KEYS: counts, holders. ARGV: instance, holder. */
const RELEASE_SLOT = `
if redis.call('SREM', KEYS[2], ARGV[2]) == 0 then return 0 end
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
`

/** KEYS: counts. ARGV: prefix, scope, calling instance. */
const COUNT_SLOTS = `${LIVE_TOTAL}
return live_total(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
`

/** KEYS: counts, holders. ARGV: instance. Drops everything this instance holds in the scope. */
const DROP_SLOTS = `
redis.call('DEL', KEYS[2])
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
`

export const CLUSTER_SCRIPTS = {
  tributaryClaim: { numberOfKeys: 1, lua: CLAIM },
  tributaryRelease: { numberOfKeys: 1, lua: RELEASE },
  tributaryOwner: { numberOfKeys: 1, lua: OWNER },
  tributaryTake: { numberOfKeys: 1, lua: TAKE },
  tributaryRoutes: { numberOfKeys: 1, lua: ROUTES },
  tributaryAcquire: { numberOfKeys: 2, lua: ACQUIRE },
  tributaryReleaseSlot: { numberOfKeys: 2, lua: RELEASE_SLOT },
  tributaryCountSlots: { numberOfKeys: 1, lua: COUNT_SLOTS },
  tributaryDropSlots: { numberOfKeys: 2, lua: DROP_SLOTS },
} as const

type Arg = string | number

/** The scripts as ioredis methods (ioredis adds one per entry of its `scripts` option). */
export interface ScriptedRedis extends Redis {
  tributaryClaim(...args: Arg[]): Promise<string | null>
  tributaryRelease(...args: Arg[]): Promise<number>
  tributaryOwner(...args: Arg[]): Promise<string | null>
  tributaryTake(...args: Arg[]): Promise<[number, number]>
  tributaryRoutes(...args: Arg[]): Promise<string[]>
  tributaryAcquire(...args: Arg[]): Promise<number>
  tributaryReleaseSlot(...args: Arg[]): Promise<number>
  tributaryCountSlots(...args: Arg[]): Promise<number>
  tributaryDropSlots(...args: Arg[]): Promise<number>
}
