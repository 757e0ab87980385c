// The Kafka producer's accumulator: merges publish calls into produce requests, splits them at the
// byte limits, and maps base offsets back to every call.
import { TributaryError } from '../errors.ts'
import type { Headers, PublishAck } from './bus.ts'

/** Bytes of a v2 record batch before its first record (DefaultRecordBatch.RECORD_BATCH_OVERHEAD). */
export const RECORD_BATCH_OVERHEAD = 61

export interface PreparedRecord {
  readonly topic: string
  readonly partition: number
  readonly key: Buffer | undefined
  readonly value: Buffer | undefined
  readonly headers: Headers | undefined
  readonly timestamp: number
  /** Upper bound of the record's bytes inside a batch (recordSizeUpperBound). */
  readonly size: number
  /** The topic's max.message.bytes: the broker refuses a larger batch for one partition. */
  readonly limit: number
}

/** Base offset the broker assigned, per `topic:partition` of one produce request. */
export type BaseOffsets = ReadonlyMap<string, number>
/** Sends one produce request; rejects with a TributaryError. The client boundary. */
export type SendBatch = (records: readonly PreparedRecord[]) => Promise<BaseOffsets>

export const partitionKey = (topic: string, partition: number): string => `${topic}:${partition}`

const varintSize = (n: number): number => {
  let zigzag = n >= 0 ? n * 2 : -n * 2 - 1
  let size = 1
  while (zigzag >= 128) {
    zigzag = Math.floor(zigzag / 128)
    size++
  }
  return size
}
const bytesSize = (b: Buffer | undefined): number => (b === undefined ? 1 : varintSize(b.length) + b.length)

/**
 * The most bytes a record can take in a v2 batch (DefaultRecord.sizeInBytes): length, attributes,
 * timestamp and offset deltas at their widest, key, value and headers with their varint lengths.
 */
export function recordSizeUpperBound(
  key: Buffer | undefined,
  value: Buffer | undefined,
  headers: Headers | undefined,
): number {
  let body = 1 + 10 + 5 + bytesSize(key) + bytesSize(value) + varintSize(headers?.size ?? 0)
  if (headers !== undefined) {
    for (const [name, v] of headers) {
      const nameLength = Buffer.byteLength(name)
      body += varintSize(nameLength) + nameLength + bytesSize(v)
    }
  }
  return varintSize(body) + body
}

/** The records of `calls` (from each call's `next`) that go into the next produce request. */
export interface SendPlan {
  readonly records: PreparedRecord[]
  /** Per call taken from, how many of its records this request carries. */
  readonly counts: number[]
}

/**
 * Takes records in queue order until the request would pass `batchMaxBytes` or a partition's batch
 * would pass its topic's limit. It stops at the first record that does not fit rather than skipping
 * it, so records of one partition never overtake each other. An empty request takes one record.
 */
export function planSend(
  calls: ReadonlyArray<{ readonly records: readonly PreparedRecord[]; readonly next: number }>,
  batchMaxBytes: number,
): SendPlan {
  const records: PreparedRecord[] = []
  const counts: number[] = []
  const partitionBytes = new Map<string, number>()
  let total = 0
  for (const call of calls) {
    let taken = 0
    for (let i = call.next; i < call.records.length; i++) {
      const record = call.records[i]!
      const key = partitionKey(record.topic, record.partition)
      const before = partitionBytes.get(key)
      const cost = record.size + (before === undefined ? RECORD_BATCH_OVERHEAD : 0)
      const after = (before ?? 0) + cost
      if (records.length > 0 && (total + cost > batchMaxBytes || after > record.limit)) {
        if (taken > 0) counts.push(taken)
        return { records, counts }
      }
      partitionBytes.set(key, after)
      total += cost
      records.push(record)
      taken++
    }
    counts.push(taken)
  }
  return { records, counts }
}

/** Offsets of `records` in request order: each partition's base offset plus the record's rank in it. */
export function assignOffsets(records: readonly PreparedRecord[], base: BaseOffsets): number[] {
  const rank = new Map<string, number>()
  return records.map((record) => {
    const key = partitionKey(record.topic, record.partition)
    const first = base.get(key)
    if (first === undefined) {
      throw new TributaryError('BUS_UNAVAILABLE', `Kafka acknowledged no offset for partition ${key}`)
    }
    const index = rank.get(key) ?? 0
    rank.set(key, index + 1)
    return first + index
  })
}

interface Call {
  readonly records: readonly PreparedRecord[]
  readonly acks: PublishAck[]
  /** performance.now() after which the call need not wait for more records to join it. */
  readonly lingerUntil: number
  next: number
  acked: number
  failed: boolean
  resolve(acks: PublishAck[]): void
  reject(err: unknown): void
}

/** The records of one call that a produce request carries. */
type Part = { readonly call: Call; readonly start: number; readonly count: number }

export interface AccumulatorOptions {
  /**
   * How long records that arrive while a request is in flight may wait, from the oldest one's
   * arrival, for more to join them. A call that finds the producer idle never waits for it.
   */
  readonly lingerMs: number
  readonly batchMaxBytes: number
  /** Bytes that may wait for the broker before publish calls are refused (default 32 MiB). */
  readonly maxQueuedBytes?: number | undefined
  readonly send: SendBatch
}

const DEFAULT_MAX_QUEUED_BYTES = 32 * 1024 * 1024

export interface Accumulator {
  /** Resolves with one ack per record, in input order, once the broker acknowledged them all. */
  enqueue(records: readonly PreparedRecord[]): Promise<PublishAck[]>
  /** Sends everything queued now and resolves when nothing is queued or in flight. */
  flush(): Promise<void>
  /** Refuses new records (BUS_CLOSED) and flushes. */
  close(): Promise<void>
}

/**
 * One produce request in flight at a time: a request that fails and is retried can never be
 * overtaken by a later one, so order per partition holds across calls (see kafka-producer.ts).
 *
 * When to send: a call that finds the producer idle goes at the end of the current event-loop turn
 * (with whatever else was published in that turn), so a caller that awaits each publish pays one
 * round trip and no linger. Calls that arrive while a request is in flight queue up and go together
 * in the next request, at the end of the turn that acknowledged the previous one, once the oldest
 * has waited `lingerMs` (usually already true: it waited for the request in flight). A full
 * request or a flush goes at once.
 */
export function createAccumulator(options: AccumulatorOptions): Accumulator {
  const queue: Call[] = []
  let queuedBytes = 0
  let inFlight = false
  let timer: NodeJS.Timeout | undefined
  let turnEnd: NodeJS.Immediate | undefined
  let flushing = 0
  let closed = false
  let idle: PromiseWithResolvers<void> | undefined

  function schedule(): void {
    if (inFlight) return
    const head = queue[0]
    if (head === undefined) {
      idle?.resolve()
      idle = undefined
      return
    }
    const linger = head.lingerUntil - performance.now()
    if (flushing > 0 || queuedBytes >= options.batchMaxBytes) {
      clearTimeout(timer)
      clearImmediate(turnEnd)
      timer = turnEnd = undefined
      dispatch()
    } else if (linger <= 0) {
      // At the end of this turn: calls made in it, e.g. by callers just acknowledged, join in.
      turnEnd ??= setImmediate(() => {
        turnEnd = undefined
        if (!inFlight && queue.length > 0) dispatch()
      })
    } else {
      timer ??= setTimeout(() => {
        timer = undefined
        schedule()
      }, linger)
    }
  }

  function dispatch(): void {
    const plan = planSend(queue, options.batchMaxBytes)
    const parts = plan.counts.map((count, i) => ({ call: queue[i]!, start: queue[i]!.next, count }))
    for (const { call, count } of parts) call.next += count
    for (const record of plan.records) queuedBytes -= record.size
    while (queue.length > 0 && queue[0]!.next === queue[0]!.records.length) queue.shift()
    inFlight = true
    void options.send(plan.records).then(
      (base) => settle(parts, () => acknowledge(parts, assignOffsets(plan.records, base))),
      (err: unknown) => settle(parts, () => fail(parts, err)),
    )
  }

  function settle(parts: readonly Part[], outcome: () => void): void {
    // Idle before the callers hear back: one that publishes again at once finds the producer idle.
    inFlight = false
    try {
      outcome()
    } catch (err) {
      fail(parts, err)
    }
    schedule()
  }

  function acknowledge(parts: readonly Part[], offsets: readonly number[]): void {
    let at = 0
    for (const { call, start, count } of parts) {
      for (let i = 0; i < count; i++) {
        const record = call.records[start + i]!
        call.acks[start + i] = { topic: record.topic, partition: record.partition, offset: offsets[at++]! }
      }
      call.acked += count
      if (!call.failed && call.acked === call.records.length) call.resolve(call.acks)
    }
  }

  function fail(parts: readonly Part[], err: unknown): void {
    for (const { call } of parts) {
      if (call.failed) continue
      call.failed = true
      call.reject(err)
      // The rest of a failed call is dropped: publishing half of it after a gap would reorder.
      const index = queue.indexOf(call)
      if (index >= 0) {
        for (let i = call.next; i < call.records.length; i++) queuedBytes -= call.records[i]!.size
        queue.splice(index, 1)
      }
    }
  }

  async function flush(): Promise<void> {
    if (!inFlight && queue.length === 0) return
    flushing++
    idle ??= Promise.withResolvers<void>()
    const done = idle.promise
    schedule()
    try {
      await done
    } finally {
      flushing--
    }
  }

  return {
    enqueue(records) {
      if (closed) return Promise.reject(new TributaryError('BUS_CLOSED', 'the event bus is closing'))
      if (records.length === 0) return Promise.resolve([])
      // A broker slower than the publishers must not grow the queue without bound (STYLE.md 12).
      const limit = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES
      if (queuedBytes > 0 && queuedBytes + records.reduce((sum, r) => sum + r.size, 0) > limit) {
        return Promise.reject(
          new TributaryError(
            'BUS_UNAVAILABLE',
            `the Kafka producer already has ${queuedBytes} bytes waiting for the broker (limit ${limit})`,
          ),
        )
      }
      const { promise, resolve, reject } = Promise.withResolvers<PublishAck[]>()
      queue.push({
        records,
        acks: new Array<PublishAck>(records.length),
        // A call that finds the producer idle does not linger.
        lingerUntil: !inFlight && queue.length === 0 ? 0 : performance.now() + options.lingerMs,
        next: 0,
        acked: 0,
        failed: false,
        resolve,
        reject,
      })
      for (const record of records) queuedBytes += record.size
      schedule()
      return promise
    },
    flush,
    async close() {
      closed = true
      await flush()
    },
  }
}
