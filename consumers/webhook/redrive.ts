// Re-drive of one subscription's dead letters: claims the letters the API asked for (a lease in
// the registry database, so one engine of many takes each), reads them back from the dead-letter
// topic and delivers each again through the subscription's own attempts (same signing, same retry
// policy). Delivered or dead-lettered again ends a letter; a stop gives the rest back.
import type { CloudEvent } from '../../core/events/cloudevent.ts'
import { decode } from '../../core/events/kafka-codec.ts'
import type { Logger } from '../../core/log.ts'
import type { RedriveClaim, WebhookSubscription } from '../../core/registry/model.ts'
import type { DeadLetterRecords, RedrivePort } from './ports.ts'
import { positionKey } from './ports.ts'

/** Letters claimed at a time. */
export const REDRIVE_BATCH = 10
/** Time allowed on top of the attempts themselves (reading the topic, writing the outcome). */
const LEASE_MARGIN_MS = 60_000

export interface RedriveDeps {
  readonly port: RedrivePort
  readonly records: DeadLetterRecords
  readonly log: Logger
}

export interface Redriver {
  /** Looks for requested letters now (again once the current round ends, if one runs). */
  kick(): void
  /** Resolves when the current round ended (its unfinished letters given back). */
  stop(): Promise<void>
}

/** Longest a claim may need: every attempt of every letter timing out after the longest wait. */
export function redriveLeaseMs(subscription: WebhookSubscription, letters: number): number {
  const { maxAttempts, maxBackoffMs } = subscription.retry
  return letters * maxAttempts * (subscription.timeoutMs + maxBackoffMs) + LEASE_MARGIN_MS
}

/**
 * `deliver` sends one event with the subscription's attempts: true when delivered, false when it
 * was dead-lettered again; it throws when the runner stops (or the endpoint answered 410).
 * `active` says whether letters may be taken now (not paused, not stopping).
 */
export function createRedriver(
  subscription: WebhookSubscription,
  deps: RedriveDeps,
  deliver: (event: CloudEvent) => Promise<boolean>,
  active: () => boolean,
): Redriver {
  const log = deps.log.child({ tenant: subscription.tenant, subscription: subscription.id })
  let round: Promise<void> | undefined
  let again = false
  let stopped = false

  async function finish(claim: RedriveClaim, outcome: Parameters<RedrivePort['finish']>[1]): Promise<void> {
    try {
      await deps.port.finish(claim, outcome)
    } catch (err) {
      // The lease runs out and another round takes the letter again: at least once.
      log.warn(
        { err, partition: claim.partition, offset: claim.offset, outcome },
        'recording a re-drive failed',
      )
    }
  }

  /** One batch; false when there was nothing to do or the round must end. */
  async function batch(): Promise<boolean> {
    const claims = await deps.port.claim(
      subscription,
      REDRIVE_BATCH,
      redriveLeaseMs(subscription, REDRIVE_BATCH),
    )
    if (claims.length === 0) return false
    let read: Awaited<ReturnType<DeadLetterRecords['read']>>
    try {
      read = await deps.records.read(claims)
    } catch (err) {
      // The topic could not be read: give the letters back rather than hold them for the lease.
      for (const claim of claims) await finish(claim, 'released')
      throw err
    }
    const { found, gone } = read
    let index = 0
    try {
      for (; index < claims.length; index++) {
        const claim = claims[index]!
        const key = positionKey(claim)
        const record = found.get(key)
        if (gone.has(key)) {
          log.warn(
            { partition: claim.partition, offset: claim.offset },
            'dead letter no longer on the topic; not re-driven',
          )
          await finish(claim, 'expired')
          continue
        }
        if (record === undefined || !active()) {
          await finish(claim, 'released')
          continue
        }
        let event: CloudEvent
        try {
          event = decode({
            key: record.key === undefined ? undefined : Buffer.from(record.key),
            value: record.value,
            headers: record.headers,
          })
        } catch (err) {
          log.warn(
            { err, partition: claim.partition, offset: claim.offset },
            'dead letter is not a CloudEvent; not re-driven',
          )
          await finish(claim, 'expired')
          continue
        }
        const delivered = await deliver(event)
        await finish(claim, delivered ? 'delivered' : 'dead-lettered')
      }
    } finally {
      // Stopped mid-way: what was not sent goes back for another engine or a restart.
      for (const claim of claims.slice(index)) await finish(claim, 'released')
    }
    // A full batch that got somewhere may have more behind it; anything else ends the round.
    return claims.length === REDRIVE_BATCH && found.size + gone.size > 0
  }

  async function run(): Promise<void> {
    try {
      while (!stopped && active() && (await batch()));
    } catch (err) {
      if (!stopped) log.warn({ err }, 're-driving dead letters failed; they stay requested')
    }
  }

  function kick(): void {
    if (stopped) return
    if (round !== undefined) {
      again = true
      return
    }
    again = false
    // A kick during a round runs another one after it: letters may have been asked for meanwhile.
    round = run().finally(() => {
      round = undefined
      if (again) kick()
    })
  }

  return {
    kick,
    async stop() {
      stopped = true
      await round
    },
  }
}
