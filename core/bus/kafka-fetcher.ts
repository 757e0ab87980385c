// The fetch loop of one Kafka subscription: asks each partition leader for the partitions that want
// records (not paused, buffer not full), on a connection pool of its own so long polls never delay
// the group's heartbeats and commits, and hands what comes back to the partition workers.
import type { ClusterMetadata, Consumer, ConnectionPool, RecordsBatch, fetchV17 } from '@platformatic/kafka'
import { IS_CONTROL } from '@platformatic/kafka'
import type { Logger } from '../log.ts'
import { createBackoff, createWakeup, sleep } from './backoff.ts'
import type { BusMessage } from './bus.ts'
import { describeKafkaError } from './kafka-errors.ts'
import type { FetchPosition, PartitionWorker } from './kafka-partition.ts'

/** How long the broker may hold a fetch open waiting for records; bounds how late a pause or close is seen. */
const FETCH_WAIT_MS = 500
const FETCH_MAX_BYTES = 16 * 1024 * 1024
/** A cluster back from an outage is noticed within this. */
const MAX_FETCH_BACKOFF_MS = 5_000
const OFFSET_OUT_OF_RANGE = 1
/** Timestamp type bit of a batch's attributes: set when the broker stamped it (LogAppendTime). */
const LOG_APPEND_TIME = 0x08

type FetchResponse = fetchV17.FetchResponse

export interface FetcherContext {
  readonly consumer: Consumer<Buffer, Buffer, Buffer, Buffer>
  readonly pool: ConnectionPool
  readonly topics: readonly string[]
  workers(): Iterable<PartitionWorker>
  /** Bytes one partition may return per fetch; at least its topic's largest batch. */
  partitionMaxBytes(topic: string): number
  /** Where to continue when a fetch position is no longer in the log. */
  outOfRange(topic: string, partition: number, requested: number): Promise<number>
  readonly log: Logger
}

export interface Fetcher {
  /** Looks at the partitions again (one wants records, was added, resumed or seeked). */
  wake(): void
  /** Stops after the fetch in flight; does not wait for it. */
  stop(): void
}

interface Wanted {
  readonly worker: PartitionWorker
  readonly from: FetchPosition
}

const toHeaders = (pairs: ReadonlyArray<readonly [Buffer | null, Buffer | null]>): Map<string, Buffer> =>
  new Map(pairs.map(([name, value]) => [name?.toString() ?? '', value ?? Buffer.alloc(0)]))

/** The records of `batches` from offset `from` on, and the offset after the last batch. */
export function decodeBatches(
  topic: string,
  partition: number,
  batches: readonly RecordsBatch[],
  from: number,
): { messages: BusMessage[]; next: number } {
  const messages: BusMessage[] = []
  let next = from
  for (const batch of batches) {
    next = Math.max(next, Number(batch.firstOffset) + batch.lastOffsetDelta + 1)
    // Control batches (transaction markers) take offsets but carry no records for us.
    if ((batch.attributes & IS_CONTROL) !== 0) continue
    const appendTime = (batch.attributes & LOG_APPEND_TIME) !== 0
    for (const record of batch.records) {
      const offset = Number(batch.firstOffset) + record.offsetDelta
      if (offset < from) continue
      messages.push({
        topic,
        partition,
        offset,
        timestamp: Number(appendTime ? batch.maxTimestamp : batch.firstTimestamp + record.timestampDelta),
        key: record.key === null ? undefined : record.key.toString(),
        value: record.value ?? undefined,
        headers: toHeaders(record.headers),
      })
    }
  }
  return { messages, next }
}

export function startFetcher(context: FetcherContext): Fetcher {
  const { consumer, log } = context
  const wakeup = createWakeup()
  const stopped = new AbortController()
  const backoff = createBackoff(250)
  let lastProblem = ''

  function problem(err: unknown, what: string): void {
    const reason = describeKafkaError(err)
    // The same failure repeats every backoff; log it when it changes.
    if (reason !== lastProblem) log.warn({ err, group: consumer.groupId }, `kafka bus: ${what}`)
    lastProblem = reason
  }

  async function fetchFrom(node: number, wanted: Wanted[], metadata: ClusterMetadata): Promise<boolean> {
    const byTopic = new Map<string, Wanted[]>()
    for (const w of wanted) byTopic.set(w.worker.topic, [...(byTopic.get(w.worker.topic) ?? []), w])
    const names = new Map<string, string>()
    const topics = [...byTopic].map(([topic, entries]) => {
      const topicId = metadata.topics.get(topic)!.id
      names.set(topicId, topic)
      return {
        topicId,
        partitions: entries.map(({ worker, from }) => ({
          partition: worker.partition,
          fetchOffset: BigInt(from.offset),
          partitionMaxBytes: context.partitionMaxBytes(topic),
          currentLeaderEpoch: -1,
          lastFetchedEpoch: -1,
        })),
      }
    })
    let response: FetchResponse | undefined
    let failure: unknown
    try {
      response = await consumer.fetch({
        node,
        topics,
        maxWaitTime: FETCH_WAIT_MS,
        minBytes: 1,
        maxBytes: FETCH_MAX_BYTES,
        connectionPool: context.pool,
      })
    } catch (err) {
      // Partition errors arrive as one error that still carries the response of every partition.
      failure = err
      response = (err as { response?: FetchResponse }).response
    }
    if (stopped.signal.aborted) return true
    if (response === undefined) {
      problem(failure, 'fetch failed; retrying')
      return false
    }
    const requested = new Map(wanted.map((w) => [w.worker.key, w]))
    let ok = true
    for (const topicResponse of response.responses) {
      const topic = names.get(topicResponse.topicId)
      if (topic === undefined) continue
      for (const p of topicResponse.partitions) {
        const entry = requested.get(`${topic}:${p.partitionIndex}`)
        if (entry === undefined) continue
        if (p.errorCode === OFFSET_OUT_OF_RANGE) {
          try {
            const offset = await context.outOfRange(topic, p.partitionIndex, entry.from.offset)
            log.warn(
              { topic, partition: p.partitionIndex, from: entry.from.offset, to: offset },
              'kafka bus: fetch position out of range; moved',
            )
            entry.worker.seek(offset, entry.from)
          } catch (err) {
            problem(err, 'cannot reposition a partition out of range')
            ok = false
          }
        } else if (p.errorCode !== 0) {
          problem(failure, `fetch of ${topic}:${p.partitionIndex} failed; retrying`)
          ok = false
        } else {
          const { messages, next } = decodeBatches(
            topic,
            p.partitionIndex,
            p.records ?? [],
            entry.from.offset,
          )
          entry.worker.accept(entry.from, messages, next)
        }
      }
    }
    return ok
  }

  async function round(): Promise<boolean> {
    const wanted: Wanted[] = []
    for (const worker of context.workers()) {
      const from = worker.fetchPosition()
      if (from !== undefined) wanted.push({ worker, from })
    }
    if (wanted.length === 0) {
      await sleep(60_000, AbortSignal.any([wakeup.signal, stopped.signal]))
      return true
    }
    let metadata: ClusterMetadata
    try {
      metadata = await consumer.metadata({ topics: [...context.topics] })
    } catch (err) {
      problem(err, 'cannot read topic metadata for fetching; retrying')
      return false
    }
    const byNode = new Map<number, Wanted[]>()
    for (const w of wanted) {
      const leader = metadata.topics.get(w.worker.topic)?.partitions[w.worker.partition]?.leader
      if (leader === undefined || leader < 0) continue
      byNode.set(leader, [...(byNode.get(leader) ?? []), w])
    }
    if (byNode.size === 0) {
      consumer.clearMetadata()
      return false
    }
    const results = await Promise.all(
      [...byNode].map(([node, entries]) => fetchFrom(node, entries, metadata)),
    )
    return results.every(Boolean)
  }

  void (async () => {
    while (!stopped.signal.aborted) {
      let ok: boolean
      try {
        ok = await round()
      } catch (err) {
        problem(err, 'fetch loop failed; retrying')
        ok = false
      }
      if (ok) {
        backoff.reset()
        lastProblem = ''
      } else {
        await sleep(Math.min(backoff.next(), MAX_FETCH_BACKOFF_MS), stopped.signal)
      }
    }
  })()

  return {
    wake: () => wakeup.fire(),
    stop() {
      stopped.abort()
    },
  }
}
