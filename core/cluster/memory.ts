// In-process ClusterState for a single process: sessions, token buckets and slots in maps. There
// is no other instance, so onTakeover never fires; claimSession still returns a local previous owner,
// and messages reach this instance only.
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
import type { ClusterState, RateDecision, SessionOwner, TakeoverNotice } from './cluster.ts'

export interface MemoryClusterOptions {
  readonly log: Logger
  /** This process's instance id; a fresh UUIDv7 when omitted. */
  readonly instance?: string
}

interface Bucket {
  tokens: number
  at: number
  /** When the bucket is full again, so that an idle one can be forgotten. */
  fullAt: number
}

/** Idle (full) buckets are swept at most this often, so the map holds only recently used keys. */
const SWEEP_EVERY_MS = 10_000

export function createMemoryCluster(options: MemoryClusterOptions): ClusterState {
  const instance = checkInstance(options.instance ?? uuidv7())
  const log = options.log.child({ component: 'cluster', instance })
  const sessions = new Map<string, SessionOwner>()
  const buckets = new Map<string, Bucket>()
  const slots = new Map<string, Set<string>>()
  const listeners = new Set<(notice: TakeoverNotice) => void>()
  const routes = new Set<string>()
  const topics = new Map<string, Set<(body: string) => void>>()
  const values = new Map<string, { value: string; until: number }>()
  let lastSweep = performance.now()

  function sweep(now: number): void {
    if (now - lastSweep < SWEEP_EVERY_MS) return
    lastSweep = now
    for (const [key, bucket] of buckets) if (bucket.fullAt <= now) buckets.delete(key)
    const wall = Date.now()
    for (const [key, entry] of values) if (entry.until <= wall) values.delete(key)
  }

  /** Delivers on a later turn, as a remote message would arrive; a failing listener is logged. */
  function deliver(topic: string, body: string): void {
    const receivers = topics.get(topic)
    if (receivers === undefined) return
    setImmediate(() => {
      for (const listener of receivers) {
        try {
          listener(body)
        } catch (err) {
          log.error({ err, topic }, 'cluster message listener failed')
        }
      }
    })
  }

  return {
    kind: 'memory',
    instance,

    async claimSession(key, owner) {
      const id = sessionId(key)
      const next = checkOwner(owner)
      const previous = sessions.get(id)
      sessions.set(id, next)
      return previous === undefined || sameOwner(previous, next) ? undefined : previous
    },

    async releaseSession(key, owner) {
      const id = sessionId(key)
      const current = sessions.get(id)
      if (current !== undefined && sameOwner(current, checkOwner(owner))) sessions.delete(id)
    },

    async sessionOwner(key) {
      return sessions.get(sessionId(key))
    },

    onTakeover(listener) {
      // Kept for symmetry with Redis: with one instance there is never a remote claim to report.
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },

    async take(key, ratePerSecond, burst, cost): Promise<RateDecision> {
      const units = checkBucket(key, ratePerSecond, burst, cost)
      const now = performance.now()
      sweep(now)
      const bucket = buckets.get(key)
      const tokens =
        bucket === undefined
          ? burst
          : Math.min(burst, bucket.tokens + (Math.max(0, now - bucket.at) * ratePerSecond) / 1000)
      // The epsilon absorbs float drift in the refill sum; the extra millisecond covers timers,
      // which Node may fire up to 1 ms early. Both as in the Redis script.
      if (tokens + 1e-9 < units) {
        return { allowed: false, retryAfterMs: Math.ceil(((units - tokens) * 1000) / ratePerSecond) + 1 }
      }
      const left = tokens - units
      buckets.set(key, { tokens: left, at: now, fullAt: now + ((burst - left) * 1000) / ratePerSecond })
      return { allowed: true, retryAfterMs: 0 }
    },

    async acquireSlot(scope, holder, limit) {
      checkSlot(scope, holder, limit)
      const held = slots.get(scope) ?? new Set<string>()
      if (held.has(holder)) return true
      if (held.size >= limit) return false
      held.add(holder)
      slots.set(scope, held)
      return true
    },

    async releaseSlot(scope, holder) {
      checkSlot(scope, holder)
      const held = slots.get(scope)
      if (held === undefined) return
      held.delete(holder)
      if (held.size === 0) slots.delete(scope)
    },

    async slots(scope) {
      return slots.get(checkName('slot scope', scope))?.size ?? 0
    },

    async addRoute(key) {
      routes.add(sessionId(key))
    },

    async removeRoute(key) {
      routes.delete(sessionId(key))
    },

    async routes(key) {
      return routes.has(sessionId(key)) ? [instance] : []
    },

    async send(to, topic, body) {
      checkInstance(to)
      checkTopic('message topic', topic)
      checkBody('message', body)
      // One process: a message to any other instance has no one to reach.
      if (to === instance) deliver(topic, body)
    },

    async broadcast(topic, body) {
      deliver(checkTopic('message topic', topic), checkBody('message', body))
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
      values.set(key, { value, until: Date.now() + checkTtl(ttlMs) })
      sweep(performance.now())
    },

    async getValue(key) {
      const entry = values.get(checkTopic('value key', key))
      if (entry === undefined || entry.until <= Date.now()) return undefined
      return entry.value
    },

    async deleteValue(key) {
      values.delete(checkTopic('value key', key))
    },

    // In the process itself: it answers whenever the process does.
    health: async () => ({ ok: true }),

    async start() {
      log.debug('in-process cluster state ready')
    },

    async stop() {
      // Everything here belongs to this instance. The maps stay usable: a stopped in-process state
      // simply holds nothing.
      sessions.clear()
      slots.clear()
      buckets.clear()
      listeners.clear()
      routes.clear()
      topics.clear()
    },
  }
}
