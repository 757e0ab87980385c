// The dead-letter index: consumes `<prefix>.deadletter` in its own group and records every letter
// in the registry database, per tenant, for the API to list; keeps each tenant's newest N there.
import type { BusMessage, EventBus, Subscription } from '../core/bus/bus.ts'
import { isTenantId } from '../core/events/ids.ts'
import type { Component } from '../core/lifecycle.ts'
import type { Logger } from '../core/log.ts'
import type { Registry } from '../core/metrics.ts'
import { Counter } from '../core/metrics.ts'
import type { DeadLetter } from '../core/registry/model.ts'
import { DEAD_LETTER_DATA_MAX_BYTES } from '../core/registry/sql/dead-letters.ts'
import type { RegistryStore } from '../core/registry/store.ts'
import {
  DETAIL_HEADER,
  FIRST_FAILURE_HEADER,
  REASON_HEADER,
  STEP_HEADER,
  SUBSCRIPTION_HEADER,
} from './deadletter.ts'

/** How often each tenant's letters are trimmed to the newest `keep`, at most. */
export const TRIM_INTERVAL_MS = 60_000
// Longest event id taken from `ce_id`; a longer one is not an id we made, so the position stands in.
const MAX_ID_LENGTH = 256
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)$/
// Above this many remembered tenants, those not trimmed within the interval are forgotten.
const MAX_REMEMBERED_TENANTS = 10_000

export interface DeadLetterIndexConfig {
  /** `<prefix>.deadletter`. */
  readonly topic: string
  /** The consumer group (`<prefix>-deadletter-index`, see core/events/topics.ts). */
  readonly group: string
  /** Letters kept per tenant (TRIBUTARY_DEADLETTER_KEEP); 0 records none. */
  readonly keep: number
  readonly trimIntervalMs?: number | undefined
  readonly maxBatch?: number | undefined
  readonly retryBackoffMs?: number | undefined
}

export interface DeadLetterIndexDeps {
  readonly bus: Pick<EventBus, 'subscribe'>
  readonly store: Pick<RegistryStore, 'recordDeadLetters' | 'trimDeadLetters'>
  readonly log: Logger
  readonly metrics?: Registry | undefined
  readonly now?: (() => Date) | undefined
}

export interface DeadLetterIndex extends Component {
  /** Batches recorded (and whose offsets the bus may now commit). */
  readonly batches: number
}

const text = (message: BusMessage, header: string): string | undefined =>
  message.headers.get(header)?.toString()

/** The percent-decoded parts of a `<tenant>/<device>` key (core/events/build.ts partitionKey). */
function keyParts(key: string | undefined): { tenant?: string | undefined; device?: string | undefined } {
  if (key === undefined) return {}
  const slash = key.indexOf('/')
  const decode = (part: string): string | undefined => {
    try {
      return part === '' ? undefined : decodeURIComponent(part)
    } catch {
      return undefined
    }
  }
  if (slash < 0) return { tenant: decode(key) }
  return { tenant: decode(key.slice(0, slash)), device: decode(key.slice(slash + 1)) }
}

function recordTime(timestamp: number, now: () => Date): string {
  const date = new Date(timestamp)
  const year = Number.isFinite(timestamp) && timestamp >= 0 ? date.getUTCFullYear() : 0
  return year >= 1970 && year <= 9999 ? date.toISOString() : now().toISOString()
}

/**
 * What the index keeps of one dead-letter record, or undefined when it names no valid tenant.
 * The tenant comes from `ce_tenant`, else from the record key (records that were no CloudEvent).
 */
export function toDeadLetter(
  message: BusMessage,
  now: () => Date = () => new Date(),
): DeadLetter | undefined {
  const fromKey = keyParts(message.key)
  const tenant = text(message, 'ce_tenant') ?? fromKey.tenant
  if (tenant === undefined || !isTenantId(tenant)) return undefined
  const id = text(message, 'ce_id')
  const deadLetteredAt = recordTime(message.timestamp, now)
  const firstFailure = text(message, FIRST_FAILURE_HEADER)
  const value = message.value
  return {
    tenant,
    id:
      id !== undefined && id !== '' && id.length <= MAX_ID_LENGTH
        ? id
        : `${message.partition}-${message.offset}`,
    partition: message.partition,
    offset: message.offset,
    device: text(message, 'ce_device') ?? fromKey.device ?? null,
    type: text(message, 'ce_type') ?? null,
    subject: text(message, 'ce_subject') ?? null,
    step: text(message, STEP_HEADER) || 'unknown',
    reason: text(message, REASON_HEADER) || 'unknown',
    detail: text(message, DETAIL_HEADER) || null,
    firstFailure:
      firstFailure !== undefined && ISO_TIME.test(firstFailure) && Number.isFinite(Date.parse(firstFailure))
        ? firstFailure
        : deadLetteredAt,
    deadLetteredAt,
    contentType: text(message, 'content-type') ?? null,
    // The topic keeps the whole record; the index keeps values up to 64 KiB.
    data: value === undefined || value.length > DEAD_LETTER_DATA_MAX_BYTES ? null : value.toString('base64'),
    subscription: text(message, SUBSCRIPTION_HEADER) || null,
  }
}

export function createDeadLetterIndex(
  config: DeadLetterIndexConfig,
  deps: DeadLetterIndexDeps,
): DeadLetterIndex {
  const { bus, store, log } = deps
  const now = deps.now ?? (() => new Date())
  const interval = config.trimIntervalMs ?? TRIM_INTERVAL_MS
  const skipped =
    deps.metrics === undefined
      ? undefined
      : new Counter({
          name: 'tributary_deadletter_index_skipped_total',
          help: 'Dead-letter records the index skipped because they name no valid tenant.',
          registers: [deps.metrics],
        })
  const trimmedAt = new Map<string, number>()
  let subscription: Subscription | undefined
  let batches = 0

  async function trim(tenants: ReadonlySet<string>): Promise<void> {
    const at = now().getTime()
    for (const tenant of tenants) {
      const last = trimmedAt.get(tenant)
      if (last !== undefined && at - last < interval) continue
      await store.trimDeadLetters(tenant, config.keep)
      trimmedAt.set(tenant, at)
    }
    if (trimmedAt.size > MAX_REMEMBERED_TENANTS) {
      for (const [tenant, last] of trimmedAt) if (at - last >= interval) trimmedAt.delete(tenant)
    }
  }

  async function handle(batch: readonly BusMessage[]): Promise<void> {
    const letters: DeadLetter[] = []
    const tenants = new Set<string>()
    for (const message of batch) {
      const letter = toDeadLetter(message, now)
      if (letter === undefined) {
        skipped?.inc()
        log.debug(
          { partition: message.partition, offset: message.offset },
          'dead-letter record names no valid tenant; not indexed',
        )
        continue
      }
      letters.push(letter)
      tenants.add(letter.tenant)
    }
    // Resolves after the write, so the bus commits these offsets only once the letters are stored.
    if (letters.length > 0 && config.keep > 0) await store.recordDeadLetters(letters)
    await trim(tenants)
    batches++
  }

  return {
    name: 'deadletter-index',
    get batches() {
      return batches
    },
    async start() {
      subscription = await bus.subscribe({
        group: config.group,
        topics: [config.topic],
        // A new deployment indexes the letters written before it started.
        from: 'earliest',
        handler: handle,
        maxBatch: config.maxBatch,
        retryBackoffMs: config.retryBackoffMs,
        onError: (err, batch) =>
          log.warn(
            { err, partition: batch[0]?.partition, offset: batch[0]?.offset, size: batch.length },
            'indexing dead letters failed; the batch will be redelivered',
          ),
      })
    },
    async stop() {
      await subscription?.close()
      subscription = undefined
    },
  }
}
