// One fetch request of a Kafka subscription: asks one broker for some partitions from their fetch
// positions, hands the records to the partition workers and notes which partitions have more.
import type { ClusterMetadata, Consumer, ConnectionPool, RecordsBatch, fetchV17 } from '@platformatic/kafka'
import { IS_CONTROL } from '@platformatic/kafka'
import type { Logger } from '../log.ts'
import type { BusMessage } from './bus.ts'
import type { FetchPosition, PartitionWorker } from './kafka-partition.ts'

const FETCH_MAX_BYTES = 16 * 1024 * 1024
const OFFSET_OUT_OF_RANGE = 1
/** Timestamp type bit of a batch's attributes: set when the broker stamped it (LogAppendTime). */
const LOG_APPEND_TIME = 0x08

type FetchResponse = fetchV17.FetchResponse

export interface FetchContext {
  readonly consumer: Consumer<Buffer, Buffer, Buffer, Buffer>
  /** The subscription's own connections: long polls never delay the group's heartbeats and commits. */
  readonly pool: ConnectionPool
  /** Bytes one partition may return per fetch; at least its topic's largest batch. */
  partitionMaxBytes(topic: string): number
  /** Where to continue when a fetch position is no longer in the log. */
  outOfRange(topic: string, partition: number, requested: number): Promise<number>
  readonly log: Logger
}

export interface Wanted {
  readonly worker: PartitionWorker
  readonly from: FetchPosition
}

export interface FetchRequest {
  readonly node: number
  readonly wanted: readonly Wanted[]
  readonly metadata: ClusterMetadata
  /** How long the broker may hold the request open while none of the partitions has records. */
  readonly maxWaitTime: number
}

export interface FetchDeps {
  readonly context: FetchContext
  /**
   * Set for every partition answered: true when the broker holds records past its new position,
   * false when it was read to its end; deleted when its position is in doubt.
   */
  readonly behind: WeakMap<PartitionWorker, boolean>
  /** Logs a failure (once while it repeats). */
  readonly problem: (err: unknown, what: string) => void
  readonly stopped: AbortSignal
}

export interface Outcome {
  readonly ok: boolean
  /** Some partition's fetch position moved on. */
  readonly progress: boolean
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

export async function fetchPartitions(request: FetchRequest, deps: FetchDeps): Promise<Outcome> {
  const { node, wanted, metadata, maxWaitTime } = request
  const { context, behind, problem } = deps
  const { consumer, log } = context
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
      maxWaitTime,
      minBytes: 1,
      maxBytes: FETCH_MAX_BYTES,
      connectionPool: context.pool,
    })
  } catch (err) {
    // Partition errors arrive as one error that still carries the response of every partition.
    failure = err
    response = (err as { response?: FetchResponse }).response
  }
  if (deps.stopped.aborted) return { ok: true, progress: false }
  if (response === undefined) {
    problem(failure, 'fetch failed; retrying')
    return { ok: false, progress: false }
  }
  const requested = new Map(wanted.map((w) => [w.worker.key, w]))
  // A fetch session leaves out partitions that have nothing new: they are at their end.
  for (const w of wanted) behind.set(w.worker, false)
  let ok = true
  let progress = false
  for (const topicResponse of response.responses) {
    const topic = names.get(topicResponse.topicId)
    if (topic === undefined) continue
    for (const p of topicResponse.partitions) {
      const entry = requested.get(`${topic}:${p.partitionIndex}`)
      if (entry === undefined) continue
      if (p.errorCode === OFFSET_OUT_OF_RANGE) {
        behind.delete(entry.worker)
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
        behind.delete(entry.worker)
        problem(failure, `fetch of ${topic}:${p.partitionIndex} failed; retrying`)
        ok = false
      } else {
        const { messages, next } = decodeBatches(topic, p.partitionIndex, p.records ?? [], entry.from.offset)
        entry.worker.accept(entry.from, messages, next)
        // Consumers read committed records (the client's default): they end at the last stable
        // offset. A fetch that moved nothing on counts as the end, whatever the offsets say.
        const end = Number(p.lastStableOffset >= 0n ? p.lastStableOffset : p.highWatermark)
        const moved = next > entry.from.offset
        behind.set(entry.worker, moved && end > next)
        progress ||= moved
      }
    }
  }
  return { ok, progress }
}
