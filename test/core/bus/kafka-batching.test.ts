// The Kafka producer's accumulator without a broker: merging, splitting, ordering and offset
// mapping, with a double only where it would call the client (SendBatch).
import { afterEach, describe, expect, it, vi } from 'vitest'
import { isTributaryError } from '../../../core/errors.ts'
import type { PreparedRecord, SendBatch } from '../../../core/bus/kafka-batching.ts'
import {
  RECORD_BATCH_OVERHEAD,
  assignOffsets,
  createAccumulator,
  planSend,
  recordSizeUpperBound,
} from '../../../core/bus/kafka-batching.ts'
import { deferred } from '../../helpers/wait.ts'

function record(
  partition: number,
  value: string,
  options: { size?: number; limit?: number; topic?: string } = {},
): PreparedRecord {
  return {
    topic: options.topic ?? 't',
    partition,
    key: undefined,
    value: Buffer.from(value),
    headers: undefined,
    timestamp: 0,
    size: options.size ?? 10,
    limit: options.limit ?? 1024 * 1024,
  }
}

/** A broker double: every partition's log starts at `start`; requests can be held and failed. */
function fakeBroker(start = 0) {
  const logs = new Map<string, number>()
  const requests: PreparedRecord[][] = []
  let inFlight = 0
  let maxInFlight = 0
  let hold: { release: () => void; failWith: (err: unknown) => void } | undefined
  const arrived: Array<ReturnType<typeof deferred<void>>> = [deferred()]
  const send: SendBatch = async (records) => {
    requests.push([...records])
    arrived[requests.length - 1]!.resolve()
    arrived.push(deferred())
    inFlight++
    maxInFlight = Math.max(maxInFlight, inFlight)
    try {
      if (hold !== undefined) {
        const gate = deferred()
        const current = hold
        hold = undefined
        current.release = () => gate.resolve()
        current.failWith = (err) => gate.reject(err)
        await gate.promise
      }
      const base = new Map<string, number>()
      for (const r of records) {
        const key = `${r.topic}:${r.partition}`
        const next = logs.get(key) ?? start
        if (!base.has(key)) base.set(key, next)
        logs.set(key, next + 1)
      }
      return base
    } finally {
      inFlight--
    }
  }
  return {
    send,
    requests,
    get maxInFlight() {
      return maxInFlight
    },
    /** Resolves when request number `n` (from 1) reached the broker. */
    request: (n: number) => {
      while (arrived.length < n) arrived.push(deferred())
      return arrived[n - 1]!.promise
    },
    /** Holds the next request until the returned handle releases or fails it. */
    holdNext() {
      const handle = { release: () => undefined as void, failWith: (_err: unknown) => undefined as void }
      hold = handle
      return handle
    },
  }
}

const values = (records: readonly PreparedRecord[]): string[] => records.map((r) => r.value!.toString())

describe('Kafka producer accumulator', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('merges publish calls made in one event-loop turn into one request, even without linger', async () => {
    const broker = fakeBroker()
    const accumulator = createAccumulator({ lingerMs: 0, batchMaxBytes: 1024 * 1024, send: broker.send })
    const calls = [
      accumulator.enqueue([record(0, 'a1'), record(1, 'a2')]),
      accumulator.enqueue([record(0, 'b1')]),
      accumulator.enqueue([record(1, 'c1'), record(0, 'c2')]),
    ]
    await Promise.all(calls)
    expect(broker.requests.map(values)).toEqual([['a1', 'a2', 'b1', 'c1', 'c2']])
  })

  it('acknowledges every record of every call, in input order, from the base offset of its partition', async () => {
    const broker = fakeBroker(100)
    const accumulator = createAccumulator({ lingerMs: 50, batchMaxBytes: 1024 * 1024, send: broker.send })
    const [first, second] = await Promise.all([
      accumulator.enqueue([record(0, 'x'), record(1, 'y'), record(0, 'z')]),
      accumulator.enqueue([record(1, 'u'), record(0, 'v'), record(2, 'w', { topic: 'other' })]),
    ])
    expect(first).toEqual([
      { topic: 't', partition: 0, offset: 100 },
      { topic: 't', partition: 1, offset: 100 },
      { topic: 't', partition: 0, offset: 101 },
    ])
    expect(second).toEqual([
      { topic: 't', partition: 1, offset: 101 },
      { topic: 't', partition: 0, offset: 102 },
      { topic: 'other', partition: 2, offset: 100 },
    ])
  })

  it('splits at batchMaxBytes, sends one request at a time, and keeps the order of records', async () => {
    const broker = fakeBroker()
    const batchMaxBytes = 1000
    const accumulator = createAccumulator({ lingerMs: 50, batchMaxBytes, send: broker.send })
    const calls = Array.from({ length: 6 }, (_, i) =>
      accumulator.enqueue([
        record(i % 2, `r${2 * i}`, { size: 200 }),
        record(i % 2, `r${2 * i + 1}`, { size: 200 }),
      ]),
    )
    const acks = await Promise.all(calls)
    expect(broker.requests.length).toBeGreaterThan(1)
    for (const request of broker.requests) {
      const partitions = new Set(request.map((r) => r.partition)).size
      expect(
        request.reduce((sum, r) => sum + r.size, 0) + partitions * RECORD_BATCH_OVERHEAD,
      ).toBeLessThanOrEqual(batchMaxBytes)
    }
    expect(broker.requests.flatMap(values)).toEqual(Array.from({ length: 12 }, (_, i) => `r${i}`))
    expect(broker.maxInFlight).toBe(1)
    // Each partition's offsets follow the publish order, across requests.
    expect(
      acks
        .flat()
        .filter((a) => a.partition === 0)
        .map((a) => a.offset),
    ).toEqual([0, 1, 2, 3, 4, 5])
  })

  it("never puts more than a topic's max.message.bytes into one partition's batch", () => {
    const limit = RECORD_BATCH_OVERHEAD + 450
    const calls = [{ records: ['a', 'b', 'c'].map((v) => record(0, v, { size: 200, limit })), next: 0 }]
    const plan = planSend(calls, 1024 * 1024)
    expect(values(plan.records)).toEqual(['a', 'b'])
    expect(plan.counts).toEqual([2])
  })

  it('stops at the first record that does not fit instead of letting a later one overtake it', () => {
    const limit = RECORD_BATCH_OVERHEAD + 300
    const calls = [
      {
        records: [record(0, 'p0-a', { size: 200, limit }), record(0, 'p0-b', { size: 200, limit })],
        next: 0,
      },
      { records: [record(1, 'p1-a', { size: 10, limit })], next: 0 },
    ]
    const plan = planSend(calls, 1024 * 1024)
    expect(values(plan.records)).toEqual(['p0-a'])
    expect(plan.counts).toEqual([1])
  })

  it('sends a record larger than batchMaxBytes alone rather than never', () => {
    const plan = planSend([{ records: [record(0, 'big', { size: 5000 }), record(0, 'next')], next: 0 }], 1000)
    expect(values(plan.records)).toEqual(['big'])
  })

  it('starts from where a partly sent call stopped', () => {
    const plan = planSend([{ records: [record(0, 'a'), record(0, 'b'), record(0, 'c')], next: 2 }], 1000)
    expect(values(plan.records)).toEqual(['c'])
    expect(plan.counts).toEqual([1])
  })

  it('sends a call that finds the producer idle without waiting for the linger', async () => {
    const broker = fakeBroker()
    // A linger longer than the test's timeout: an awaited publish must not pay it.
    const accumulator = createAccumulator({ lingerMs: 60_000, batchMaxBytes: 1024 * 1024, send: broker.send })
    for (const value of ['one', 'two', 'three']) {
      expect(await accumulator.enqueue([record(0, value)])).toHaveLength(1)
    }
    expect(broker.requests.map(values)).toEqual([['one'], ['two'], ['three']])
  })

  it('lets calls that arrived while a request was in flight linger from the oldest arrival', async () => {
    vi.useFakeTimers({
      toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'performance'],
    })
    const broker = fakeBroker()
    const accumulator = createAccumulator({ lingerMs: 50, batchMaxBytes: 1024 * 1024, send: broker.send })
    const held = broker.holdNext()
    const first = accumulator.enqueue([record(0, 'first')])
    await vi.advanceTimersByTimeAsync(0)
    await broker.request(1)
    const second = accumulator.enqueue([record(0, 'second')])
    await vi.advanceTimersByTimeAsync(20)
    const third = accumulator.enqueue([record(1, 'third')])
    held.release()
    await first
    // 'second' has waited 20 of its 50 ms: the next request leaves 30 ms later (at the end of that
    // turn), with 'third'.
    await vi.advanceTimersByTimeAsync(29)
    expect(broker.requests).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(2)
    await Promise.all([second, third])
    expect(broker.requests.map(values)).toEqual([['first'], ['second', 'third']])
  })

  it('sends queued calls at once after the request in flight when they already waited the linger', async () => {
    const broker = fakeBroker()
    const accumulator = createAccumulator({ lingerMs: 0, batchMaxBytes: 1024 * 1024, send: broker.send })
    const held = broker.holdNext()
    const first = accumulator.enqueue([record(0, 'first')])
    await broker.request(1)
    const second = accumulator.enqueue([record(0, 'second')])
    held.release()
    // The follow-up request leaves at the end of the turn that acknowledged the first one.
    await first
    await broker.request(2)
    await second
    expect(broker.requests.map(values)).toEqual([['first'], ['second']])
  })

  it('queues calls while a request is in flight and sends them together next', async () => {
    const broker = fakeBroker()
    const accumulator = createAccumulator({ lingerMs: 0, batchMaxBytes: 1024 * 1024, send: broker.send })
    const held = broker.holdNext()
    const first = accumulator.enqueue([record(0, 'first')])
    await broker.request(1)
    const later = [accumulator.enqueue([record(0, 'second')]), accumulator.enqueue([record(1, 'third')])]
    expect(broker.requests).toHaveLength(1)
    held.release()
    await Promise.all([first, ...later])
    expect(broker.requests.map(values)).toEqual([['first'], ['second', 'third']])
    expect(broker.maxInFlight).toBe(1)
  })

  it('fails the calls of a failed request, drops the rest of a split call, and carries on with later calls', async () => {
    const broker = fakeBroker()
    const accumulator = createAccumulator({ lingerMs: 0, batchMaxBytes: 500, send: broker.send })
    const held = broker.holdNext()
    // 'split' needs two requests; its first one fails.
    const split = accumulator.enqueue([record(0, 's1', { size: 300 }), record(0, 's2', { size: 300 })])
    await broker.request(1)
    const after = accumulator.enqueue([record(0, 'after')])
    held.failWith(new Error('broker gone'))
    await expect(split).rejects.toThrow('broker gone')
    expect(await after).toEqual([{ topic: 't', partition: 0, offset: 0 }])
    expect(broker.requests.map(values)).toEqual([['s1'], ['after']])
  })

  it('refuses a call while too many bytes wait for a slow broker, and takes calls again once they went out', async () => {
    const broker = fakeBroker()
    const accumulator = createAccumulator({
      lingerMs: 0,
      batchMaxBytes: 1000,
      maxQueuedBytes: 500,
      send: broker.send,
    })
    const held = broker.holdNext()
    const first = accumulator.enqueue([record(0, 'in flight', { size: 400 })])
    await broker.request(1)
    const queued = accumulator.enqueue([record(0, 'queued', { size: 400 })])
    const refused = await accumulator.enqueue([record(0, 'one too many', { size: 400 })]).then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(isTributaryError(refused, 'BUS_UNAVAILABLE')).toBe(true)
    held.release()
    await Promise.all([first, queued])
    expect(await accumulator.enqueue([record(0, 'later', { size: 400 })])).toEqual([
      { topic: 't', partition: 0, offset: 2 },
    ])
  })

  it('refuses new records once closed, after sending what was queued', async () => {
    const broker = fakeBroker()
    const accumulator = createAccumulator({ lingerMs: 60_000, batchMaxBytes: 1024 * 1024, send: broker.send })
    const queued = accumulator.enqueue([record(0, 'queued')])
    await accumulator.close()
    expect(await queued).toEqual([{ topic: 't', partition: 0, offset: 0 }])
    const refused = await accumulator.enqueue([record(0, 'late')]).then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(isTributaryError(refused, 'BUS_CLOSED')).toBe(true)
  })

  it('maps base offsets to records and refuses an answer that misses a partition', () => {
    const records = [record(3, 'a'), record(1, 'b'), record(3, 'c')]
    expect(
      assignOffsets(
        records,
        new Map([
          ['t:3', 40],
          ['t:1', 9],
        ]),
      ),
    ).toEqual([40, 9, 41])
    expect(() => assignOffsets(records, new Map([['t:3', 40]]))).toThrow(/no offset for partition t:1/)
  })

  it('bounds the size of a record as Kafka encodes it, headers included', () => {
    // Exact v2 size of key "k", value "v", no headers: length 1 + attributes 1 + timestamp delta 1 +
    // offset delta 1 + key 2 + value 2 + header count 1 = 9; the bound allows the widest deltas.
    const plain = recordSizeUpperBound(Buffer.from('k'), Buffer.from('v'), undefined)
    expect(plain).toBeGreaterThanOrEqual(9)
    expect(plain).toBeLessThanOrEqual(9 + 13)
    const withHeader = recordSizeUpperBound(
      Buffer.from('k'),
      Buffer.from('v'),
      new Map([['ce_é', Buffer.alloc(200)]]),
    )
    // Header name in UTF-8 bytes (5) and value (200), each with its varint length (1 and 2), and
    // one more byte for the record's own length prefix, which now needs two.
    expect(withHeader - plain).toBe(1 + 5 + 2 + 200 + 1)
    const nulls = recordSizeUpperBound(undefined, undefined, undefined)
    expect(nulls).toBeLessThan(plain)
  })
})
