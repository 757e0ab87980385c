// Offset commits of one Kafka subscription: coalesced per partition (the newest position wins), one
// request in flight, only for partitions the member owns, and never while it rejoins its group.
import type { Consumer } from '@platformatic/kafka'
import type { Logger } from '../log.ts'
import { sleep } from './backoff.ts'

const RETRY_MS = 1000

export interface Committer {
  /** Queues the partition's next position: last handled offset + 1, or where a seek moved it. */
  set(topic: string, partition: number, offset: number): void
  /** Forgets what is queued for a partition this member gave up. */
  drop(key: string): void
  /** Sends what is queued if the member is in a stable group; called again after every join. */
  kick(): void
  /** Resolves true once nothing is queued or in flight, false at the deadline (performance.now()). */
  flush(deadline: number): Promise<boolean>
}

interface Pending {
  readonly topic: string
  readonly partition: number
  readonly offset: number
}

export function createCommitter(
  consumer: Consumer<Buffer, Buffer, Buffer, Buffer>,
  owns: (key: string) => boolean,
  log: Logger,
): Committer {
  const pending = new Map<string, Pending>()
  let inFlight: Promise<void> | undefined
  let retryTimer: NodeJS.Timeout | undefined

  function kick(): void {
    if (inFlight !== undefined || retryTimer !== undefined || pending.size === 0) return
    // A commit during a rejoin fails with a generation error, and the client answers that by
    // joining again, which restarts the rebalance: wait for the join, whose handler kicks again.
    if (!consumer.isActive()) return
    const batch = [...pending].filter(([key]) => owns(key))
    pending.clear()
    if (batch.length === 0) return
    inFlight = consumer
      .commit({
        offsets: batch.map(([, o]) => ({ ...o, offset: BigInt(o.offset), leaderEpoch: -1 })),
      })
      .then(
        () => undefined,
        (err: unknown) => {
          log.warn({ err, group: consumer.groupId }, 'kafka bus: offset commit failed; retrying')
          // Keep what a newer position has not replaced meanwhile.
          for (const [key, o] of batch) if (!pending.has(key)) pending.set(key, o)
          retryTimer = setTimeout(() => {
            retryTimer = undefined
            kick()
          }, RETRY_MS)
          retryTimer.unref()
        },
      )
      .finally(() => {
        inFlight = undefined
        kick()
      })
  }

  return {
    set(topic, partition, offset) {
      pending.set(`${topic}:${partition}`, { topic, partition, offset })
      kick()
    },
    drop(key) {
      pending.delete(key)
    },
    kick,
    async flush(deadline) {
      for (;;) {
        if (retryTimer !== undefined && inFlight === undefined) {
          clearTimeout(retryTimer)
          retryTimer = undefined
        }
        kick()
        if (inFlight === undefined && ![...pending.keys()].some(owns)) return true
        const left = deadline - performance.now()
        if (left <= 0) return false
        const waited = new AbortController()
        await Promise.race([inFlight ?? sleep(Math.min(left, 50)), sleep(left, waited.signal)])
        waited.abort()
      }
    },
  }
}
