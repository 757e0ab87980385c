// Input limits shared by every ClusterState implementation, checked before any state changes so
// that memory and Redis refuse exactly the same calls.
import { TributaryError } from '../errors.ts'
import { assertDeviceId, assertTenantId } from '../events/ids.ts'
import type { SessionKey, SessionOwner } from './cluster.ts'
import { MESSAGE_MAX_BYTES } from './cluster.ts'

/** Instance ids become part of Redis key and channel names, where `:` ends them. */
export const INSTANCE_PATTERN = /^[A-Za-z0-9._-]{1,64}$/
/** Bucket keys, slot scopes, holders and connection ids: any text up to this length. */
export const NAME_MAX_LENGTH = 256
export const RATE_MIN = 0.001
export const RATE_MAX = 1_000_000
export const BURST_MAX = 1_000_000_000
export const LIMIT_MAX = 1_000_000

const invalid = (message: string): TributaryError => new TributaryError('INTERNAL', message)

export function checkInstance(instance: string): string {
  if (!INSTANCE_PATTERN.test(instance)) {
    throw new TributaryError(
      'CONFIG_INVALID',
      `cluster instance id ${JSON.stringify(instance)} is invalid: use 1-64 of [A-Za-z0-9._-]`,
    )
  }
  return instance
}

export function checkName(what: string, value: string): string {
  if (value.length === 0 || value.length > NAME_MAX_LENGTH) {
    throw invalid(`cluster ${what} must be 1-${NAME_MAX_LENGTH} characters long`)
  }
  return value
}

/** The session key as `<tenant>/<device>` (neither id can contain `/`). */
export function sessionId(key: SessionKey): string {
  return `${assertTenantId(key.tenant)}/${assertDeviceId(key.device)}`
}

export function checkOwner(owner: SessionOwner): SessionOwner {
  if (!INSTANCE_PATTERN.test(owner.instance)) {
    throw new TributaryError(
      'IDENTIFIER_INVALID',
      `session owner instance ${JSON.stringify(owner.instance)} is invalid`,
    )
  }
  checkName('connection id', owner.connection)
  return { instance: owner.instance, connection: owner.connection }
}

export const sameOwner = (a: SessionOwner, b: SessionOwner): boolean =>
  a.instance === b.instance && a.connection === b.connection

/** Validates a take() call; returns the cost with its default applied. */
export function checkBucket(key: string, ratePerSecond: number, burst: number, cost = 1): number {
  checkName('rate key', key)
  if (!Number.isFinite(ratePerSecond) || ratePerSecond < RATE_MIN || ratePerSecond > RATE_MAX) {
    throw invalid(`rate must be ${RATE_MIN}-${RATE_MAX} per second, not ${ratePerSecond}`)
  }
  if (!Number.isFinite(burst) || burst <= 0 || burst > BURST_MAX) {
    throw invalid(`burst must be above 0 and at most ${BURST_MAX}, not ${burst}`)
  }
  // A cost above the burst could never be paid: refusing it forever would hide the bug.
  if (!Number.isFinite(cost) || cost < 0 || cost > burst) {
    throw invalid(`cost must be 0-${burst} (the burst), not ${cost}`)
  }
  return cost
}

export function checkSlot(scope: string, holder: string, limit?: number): void {
  checkName('slot scope', scope)
  checkName('slot holder', holder)
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0 || limit > LIMIT_MAX)) {
    throw invalid(`slot limit must be an integer 0-${LIMIT_MAX}, not ${limit}`)
  }
}

/** Message topics and value keys: short names without spaces (they become Redis key parts). */
const TOPIC_PATTERN = /^[A-Za-z0-9._:/@~-]{1,256}$/

export function checkTopic(what: string, topic: string): string {
  if (!TOPIC_PATTERN.test(topic))
    throw invalid(`cluster ${what} ${JSON.stringify(topic.slice(0, 64))} is invalid`)
  return topic
}

export function checkBody(what: string, body: string): string {
  if (body.length > MESSAGE_MAX_BYTES)
    throw invalid(`cluster ${what} is longer than ${MESSAGE_MAX_BYTES} characters`)
  return body
}

export function checkTtl(ttlMs: number): number {
  if (!Number.isInteger(ttlMs) || ttlMs < 1 || ttlMs > 366 * 86_400_000) {
    throw invalid(`cluster value ttl must be an integer 1 ms to 366 days, not ${ttlMs}`)
  }
  return ttlMs
}
