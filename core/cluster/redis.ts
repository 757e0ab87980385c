// ClusterState on Redis, shared by every instance of a deployment: session owners with takeover
// notices over pub/sub, command routes, messages between instances, shared values, token buckets and connection slots in Lua scripts, and a per-instance
// heartbeat key whose lapse drops what a crashed instance held. Layout: docs/cluster-state.md.
import { TributaryError } from '../errors.ts'
import { uuidv7 } from '../events/ids.ts'
import type { Logger } from '../log.ts'
import {
  checkBody,
  checkBucket,
  checkInstance,
  checkName,
  checkOwner,
  checkSlot,
  checkTopic,
  checkTtl,
  sameOwner,
  sessionId,
} from './checks.ts'
import type { ClusterState, SessionKey, SessionOwner, TakeoverNotice } from './cluster.ts'
import { openConnection, redisAddress, unavailable } from './redis-connection.ts'
import { parseMessage, parseNotice, parseOwner } from './redis-notice.ts'

export interface RedisClusterOptions {
  readonly url: string
  readonly log: Logger
  /** This process's instance id; a fresh UUIDv7 when omitted. */
  readonly instance?: string
  /** Prepended to every key and channel, so that deployments can share one Redis. */
  readonly keyPrefix?: string
  /** How often this instance proves it is alive; it counts as crashed after 3× this. */
  readonly heartbeatMs?: number
  readonly connectTimeoutMs?: number
  /** A command without a reply after this fails with CLUSTER_UNAVAILABLE. */
  readonly commandTimeoutMs?: number
}

export const REDIS_CLUSTER_DEFAULTS = {
  keyPrefix: 'tributary:',
  heartbeatMs: 2_000,
  connectTimeoutMs: 2_000,
  commandTimeoutMs: 1_000,
} as const

/** The heartbeat key lives this many heartbeats: one or two late beats are not a crash. */
export const HEARTBEAT_LAPSE_FACTOR = 3

function checkOptions(options: RedisClusterOptions): Required<Omit<RedisClusterOptions, 'log'>> {
  const merged = { ...REDIS_CLUSTER_DEFAULTS, instance: uuidv7(), ...options }
  checkInstance(merged.instance)
  if (merged.keyPrefix.length > 64 || /\s/.test(merged.keyPrefix)) {
    throw new TributaryError('CONFIG_INVALID', 'cluster key prefix must be at most 64 characters, no spaces')
  }
  for (const name of ['heartbeatMs', 'connectTimeoutMs', 'commandTimeoutMs'] as const) {
    const value = merged[name]
    if (!Number.isInteger(value) || value < 10 || value > 600_000) {
      throw new TributaryError('CONFIG_INVALID', `cluster ${name} must be an integer 10-600000, not ${value}`)
    }
  }
  return merged
}

export function createRedisCluster(options: RedisClusterOptions): ClusterState {
  const settings = checkOptions(options)
  const { instance, keyPrefix: prefix, heartbeatMs } = settings
  const log = options.log.child({ component: 'cluster', instance })
  const keys = {
    session: (id: string) => `${prefix}session:${id}`,
    rate: (key: string) => `${prefix}rate:${key}`,
    counts: (scope: string) => `${prefix}slots:${scope}`,
    holders: (scope: string) => `${prefix}slots@${instance}:${scope}`,
    alive: `${prefix}instance:${instance}:alive`,
    channel: `${prefix}instance:${instance}`,
    routes: (id: string) => `${prefix}routes:${id}`,
    inbox: (to: string) => `${prefix}instance:${to}:messages`,
    broadcast: `${prefix}broadcast`,
    value: (key: string) => `${prefix}value:${key}`,
  }
  const connection = (name: string) =>
    openConnection({ ...settings, name: `tributary-cluster-${name}-${instance}` }, log)
  const main = connection('main')
  const subscriber = connection('sub')
  const redis = main.redis
  // What this instance holds, so that stop() can give it back.
  const heldSessions = new Map<string, SessionOwner>()
  const heldSlots = new Map<string, Set<string>>()
  const listeners = new Set<(notice: TakeoverNotice) => void>()
  const heldRoutes = new Set<string>()
  const topics = new Map<string, Set<(body: string) => void>>()
  let heartbeat: NodeJS.Timeout | undefined
  let stopped = false

  async function call<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (err) {
      throw unavailable(`cluster state ${what} failed`, err)
    }
  }

  const beat = (): Promise<unknown> =>
    redis.set(keys.alive, String(Date.now()), 'PX', heartbeatMs * HEARTBEAT_LAPSE_FACTOR)

  /** A message of send() or broadcast(): `{"topic":…,"body":…}`. */
  function onDelivery(message: string): void {
    const parsed = parseMessage(message)
    if (parsed === undefined) {
      log.warn('ignoring a malformed cluster message')
      return
    }
    for (const listener of topics.get(parsed.topic) ?? []) {
      try {
        listener(parsed.body)
      } catch (err) {
        log.error({ err, topic: parsed.topic }, 'cluster message listener failed')
      }
    }
  }

  function onMessage(channel: string, message: string): void {
    if (channel === keys.inbox(instance) || channel === keys.broadcast) return onDelivery(message)
    if (channel !== keys.channel) return
    const notice = parseNotice(message)
    if (notice === undefined) {
      log.warn({ channel }, 'ignoring a malformed takeover notice')
      return
    }
    const id = `${notice.tenant}/${notice.device}`
    const held = heldSessions.get(id)
    if (held !== undefined && sameOwner(held, notice.previous)) heldSessions.delete(id)
    for (const listener of listeners) {
      try {
        listener(notice)
      } catch (err) {
        log.error({ err, tenant: notice.tenant, device: notice.device }, 'takeover listener failed')
      }
    }
  }

  function holdSlot(scope: string, holder: string, held: boolean): void {
    const set = heldSlots.get(scope) ?? new Set<string>()
    if (held) set.add(holder)
    else set.delete(holder)
    if (set.size === 0) heldSlots.delete(scope)
    else heldSlots.set(scope, set)
  }

  return {
    kind: 'redis',
    instance,

    async claimSession(key: SessionKey, owner: SessionOwner) {
      const id = sessionId(key)
      const next = checkOwner(owner)
      const previous = await call('claim', () =>
        redis.tributaryClaim(
          keys.session(id),
          prefix,
          next.instance,
          next.connection,
          key.tenant,
          key.device,
        ),
      )
      if (next.instance === instance) heldSessions.set(id, next)
      return previous === null ? undefined : parseOwner(previous)
    },

    async releaseSession(key, owner) {
      const id = sessionId(key)
      const current = checkOwner(owner)
      await call('release', () =>
        redis.tributaryRelease(keys.session(id), current.instance, current.connection),
      )
      const held = heldSessions.get(id)
      if (held !== undefined && sameOwner(held, current)) heldSessions.delete(id)
    },

    async sessionOwner(key) {
      const id = sessionId(key)
      const raw = await call('owner lookup', () => redis.tributaryOwner(keys.session(id), prefix, instance))
      return raw === null ? undefined : parseOwner(raw)
    },

    onTakeover(listener) {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },

    async take(key, ratePerSecond, burst, cost) {
      const units = checkBucket(key, ratePerSecond, burst, cost)
      const [allowed, retryAfterMs] = await call('take', () =>
        redis.tributaryTake(keys.rate(key), ratePerSecond, burst, units),
      )
      return { allowed: allowed === 1, retryAfterMs }
    },

    async acquireSlot(scope, holder, limit) {
      checkSlot(scope, holder, limit)
      const acquired = await call('slot acquire', () =>
        redis.tributaryAcquire(
          keys.counts(scope),
          keys.holders(scope),
          prefix,
          instance,
          holder,
          limit,
          scope,
        ),
      )
      if (acquired === 1) holdSlot(scope, holder, true)
      return acquired === 1
    },

    async releaseSlot(scope, holder) {
      checkSlot(scope, holder)
      await call('slot release', () =>
        redis.tributaryReleaseSlot(keys.counts(scope), keys.holders(scope), instance, holder),
      )
      holdSlot(scope, holder, false)
    },

    async slots(scope) {
      checkName('slot scope', scope)
      return call('slot count', () => redis.tributaryCountSlots(keys.counts(scope), prefix, scope, instance))
    },

    async addRoute(key) {
      const id = sessionId(key)
      await call('route add', () => redis.sadd(keys.routes(id), instance))
      heldRoutes.add(id)
    },

    async removeRoute(key) {
      const id = sessionId(key)
      heldRoutes.delete(id)
      await call('route removal', () => redis.srem(keys.routes(id), instance))
    },

    async routes(key) {
      const id = sessionId(key)
      return call('route lookup', () => redis.tributaryRoutes(keys.routes(id), prefix, instance))
    },

    async send(to, topic, body) {
      checkInstance(to)
      const message = JSON.stringify({
        topic: checkTopic('message topic', topic),
        body: checkBody('message', body),
      })
      await call('send', () => redis.publish(keys.inbox(to), message))
    },

    async broadcast(topic, body) {
      const message = JSON.stringify({
        topic: checkTopic('message topic', topic),
        body: checkBody('message', body),
      })
      await call('broadcast', () => redis.publish(keys.broadcast, message))
    },

    onMessage(topic, listener) {
      checkTopic('message topic', topic)
      const receivers = topics.get(topic) ?? new Set()
      receivers.add(listener)
      topics.set(topic, receivers)
      return () => {
        receivers.delete(listener)
        if (receivers.size === 0) topics.delete(topic)
      }
    },

    async setValue(key, value, ttlMs) {
      checkTopic('value key', key)
      checkBody('value', value)
      await call('value write', () => redis.set(keys.value(key), value, 'PX', checkTtl(ttlMs)))
    },

    async getValue(key) {
      const value = await call('value read', () => redis.get(keys.value(checkTopic('value key', key))))
      return value ?? undefined
    },

    async deleteValue(key) {
      await call('value delete', () => redis.del(keys.value(checkTopic('value key', key))))
    },

    async health() {
      const where = redisAddress(options.url)
      if (stopped) return { ok: false, reason: 'the cluster state is stopped' }
      // The subscriber carries takeover notices and messages between instances: it counts too.
      const down = main.problem() ?? subscriber.problem()
      if (down !== undefined) return { ok: false, reason: `Redis at ${where} is unreachable: ${down}` }
      try {
        await redis.ping()
        return { ok: true }
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err)
        return { ok: false, reason: `Redis at ${where} does not answer: ${reason}` }
      }
    },

    async start() {
      try {
        await Promise.all([main.connect(), subscriber.connect()])
        subscriber.redis.on('message', onMessage)
        // Subscribed before the first heartbeat: nobody sends a notice to an instance that is not
        // alive, so none can be lost in between.
        await call('subscribe', () =>
          subscriber.redis.subscribe(keys.channel, keys.inbox(instance), keys.broadcast),
        )
        await call('heartbeat', beat)
      } catch (err) {
        await Promise.all([main.close(), subscriber.close()])
        throw err
      }
      heartbeat = setInterval(() => {
        beat().catch((err: unknown) => log.debug({ err }, 'heartbeat failed'))
      }, heartbeatMs)
      heartbeat.unref()
      log.info({ redis: redisAddress(options.url), prefix, heartbeatMs }, 'redis cluster state ready')
    },

    async stop() {
      if (stopped) return
      stopped = true
      clearInterval(heartbeat)
      listeners.clear()
      topics.clear()
      if (redis.status === 'ready') {
        const releases = [
          ...[...heldRoutes].map((id) => redis.srem(keys.routes(id), instance)),
          ...[...heldSessions].map(([id, owner]) =>
            redis.tributaryRelease(keys.session(id), owner.instance, owner.connection),
          ),
          ...[...heldSlots.keys()].map((scope) =>
            redis.tributaryDropSlots(keys.counts(scope), keys.holders(scope), instance),
          ),
        ]
        const failed = (await Promise.allSettled(releases)).filter((r) => r.status === 'rejected')
        if (failed.length > 0) {
          log.warn({ err: failed[0]?.reason, failed: failed.length }, 'could not release all cluster state')
        }
        // Without its heartbeat anything left over counts as a crashed instance's and is dropped.
        await redis
          .del(keys.alive)
          .catch((err: unknown) => log.warn({ err }, 'could not remove the heartbeat'))
      }
      heldSessions.clear()
      heldSlots.clear()
      heldRoutes.clear()
      await Promise.all([subscriber.close(), main.close()])
    },
  }
}
