// The EventBus contract when writes fail: on the embedded log through its file layer (one failed
// write, several, a full disk; part of the data written before the error), on Kafka by killing the
// broker and starting it again. Either way: a publish that could not be made durable is refused
// with a retryable error, the process stays responsive, the bus recovers by itself, and a consumer
// gets every acknowledged record in order, none skipped and none committed before it was handled.
import { rm } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BusMessage, EventBus, Subscription } from '../../../core/bus/bus.ts'
import { createEmbeddedBus } from '../../../core/bus/embedded/index.ts'
import { createKafkaBus } from '../../../core/bus/kafka.ts'
import { isTributaryError } from '../../../core/errors.ts'
import { startLocalKafka } from '../../../scripts/kafka.ts'
import type { LocalKafka } from '../../../scripts/kafka.ts'
import { uniqueName, waitUntil } from '../../helpers/wait.ts'
import { createFaultyFiles } from './faulty-files.ts'
import { TEST_MAX_MESSAGE_BYTES } from './implementations.ts'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

interface Outage {
  /** From now on writes fail (all of them, or the next few). */
  begin(): Promise<void>
  /** Writes work again. */
  end(): Promise<void>
  /** True when every publish during the outage must fail (not only the first few). */
  readonly total: boolean
}

interface FaultyBus {
  readonly bus: EventBus
  readonly outage: Outage
  /**
   * Kafka: a refused (timed-out) produce may still have been written, and a consumer may be given
   * again what it handled but had not committed when the broker died (at-least-once).
   */
  readonly atLeastOnce: boolean
  close(): Promise<void>
}

function embedded(plan: 'one write' | 'three writes' | 'one sync' | 'full disk'): () => Promise<FaultyBus> {
  return async () => {
    const files = createFaultyFiles()
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-faults-'))
    const bus = await createEmbeddedBus({ dataDir, files, maxMessageBytes: TEST_MAX_MESSAGE_BYTES })
    const outage: Outage = {
      total: plan === 'full disk',
      async begin() {
        if (plan === 'one write') files.failWrites(1, { partial: true })
        else if (plan === 'three writes') files.failWrites(3)
        else if (plan === 'one sync') files.failSyncs(1)
        else files.fill()
      },
      async end() {
        files.heal()
      },
    }
    return {
      bus,
      outage,
      atLeastOnce: false,
      close: async () => {
        await bus.close()
        await rm(dataDir, { recursive: true, force: true })
      },
    }
  }
}

async function kafka(): Promise<FaultyBus> {
  // A broker of its own: killing the shared one would fail every other suite.
  let broker: LocalKafka = await startLocalKafka()
  const dataDir = broker.dataDir
  const bus = await createKafkaBus({
    brokers: [broker.brokers],
    clientId: 'tributary-faults',
    maxMessageBytes: TEST_MAX_MESSAGE_BYTES,
    sessionTimeoutMs: 6000,
    heartbeatIntervalMs: 500,
    drainTimeoutMs: 5000,
  })
  return {
    bus,
    atLeastOnce: true,
    outage: {
      total: true,
      begin: () => broker.kill(),
      async end() {
        broker = await startLocalKafka({ dataDir })
      },
    },
    close: async () => {
      await bus.close()
      await broker.stop()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}

/** Each value once, where it first appeared. */
const firstSeen = (values: readonly string[]): string[] => [...new Set(values)]

const implementations: Array<{ name: string; open: () => Promise<FaultyBus> }> = [
  { name: 'embedded, one failed write (half written)', open: embedded('one write') },
  { name: 'embedded, three failed writes', open: embedded('three writes') },
  { name: 'embedded, one failed sync', open: embedded('one sync') },
  { name: 'embedded, full disk', open: embedded('full disk') },
  { name: 'kafka, broker killed and restarted', open: kafka },
]

describe.each(implementations)('EventBus contract under failed writes: $name', ({ open }) => {
  let faulty: FaultyBus
  let bus: EventBus
  const subscriptions: Subscription[] = []

  beforeAll(async () => {
    faulty = await open()
    bus = faulty.bus
  }, 120_000)

  afterAll(async () => {
    await Promise.allSettled(subscriptions.map((s) => s.close()))
    await faulty.close()
  }, 60_000)

  async function collect(topic: string, group = uniqueName('group')): Promise<BusMessage[]> {
    const messages: BusMessage[] = []
    subscriptions.push(
      await bus.subscribe({
        group,
        topics: [topic],
        from: 'earliest',
        retryBackoffMs: 20,
        handler: async (batch) => void messages.push(...batch),
      }),
    )
    return messages
  }

  /** Publishes until the bus takes the record again (Kafka needs a moment to reconnect). */
  async function publishWhenBack(topic: string, key: string, value: string): Promise<void> {
    await waitUntil(
      async () =>
        bus.publish([{ topic, key, value: Buffer.from(value) }]).then(
          () => true,
          () => false,
        ),
      { timeoutMs: 60_000, message: () => `the bus did not take ${value} again` },
    )
  }

  it('refuses what it cannot make durable, stays responsive, and delivers every acknowledged record after it recovers', async () => {
    const topic = uniqueName('faults')
    await bus.admin.createTopics([{ name: topic, partitions: 2 }])
    const group = uniqueName('group')
    const received = await collect(topic, group)
    const acked: string[] = []
    const refused: string[] = []
    const send = async (value: string): Promise<void> => {
      try {
        await bus.publish([{ topic, key: 'k', value: Buffer.from(value) }])
        acked.push(value)
      } catch (err) {
        // A failed write is a retryable refusal, never some other error.
        expect(isTributaryError(err, 'BUS_UNAVAILABLE')).toBe(true)
        expect((err as { canRetry: boolean }).canRetry).toBe(true)
        refused.push(value)
      }
    }
    for (let i = 0; i < 10; i++) await send(`before-${i}`)
    await waitUntil(() => received.length >= 10)

    // The event loop keeps turning while writes fail: a spinning reader would stop this timer.
    let ticks = 0
    const ticker = setInterval(() => ticks++, 5)
    try {
      await faulty.outage.begin()
      for (let i = 0; i < 3; i++) await send(`during-${i}`)
      expect(refused.length).toBeGreaterThanOrEqual(faulty.outage.total ? 3 : 1)
      const seen = ticks
      await waitUntil(() => ticks > seen + 3, { message: () => 'the event loop stopped turning' })
      await faulty.outage.end()
      await publishWhenBack(topic, 'k', 'after-first')
      acked.push('after-first')
      for (let i = 0; i < 10; i++) await send(`after-${i}`)
    } finally {
      clearInterval(ticker)
    }
    expect(refused.filter((v) => v.startsWith('after-'))).toEqual([])

    await waitUntil(() => acked.every((v) => received.some((m) => m.value?.toString() === v)), {
      timeoutMs: 60_000,
      message: () =>
        `missing: ${acked.filter((v) => !received.some((m) => m.value?.toString() === v)).join(', ')}`,
    })
    const values = received.map((m) => m.value!.toString())
    // In publish order, each acknowledged record once.
    expect(firstSeen(values).filter((v) => acked.includes(v))).toEqual(acked)
    if (!faulty.atLeastOnce) {
      expect(values).toEqual(acked)
      // Offsets handed out are consecutive: nothing was skipped over.
      const offsets = received.map((m) => m.offset)
      expect(offsets).toEqual(offsets.map((_, i) => offsets[0]! + i))
    }

    // A new group reading everything from the start (the disk, not the in-memory tail) agrees.
    const again = await collect(topic)
    const distinct = firstSeen(values)
    await waitUntil(() => again.length >= distinct.length, { timeoutMs: 30_000 })
    expect(again.map((m) => m.value!.toString())).toEqual(distinct)
    // The first group committed exactly what it handled.
    await waitUntil(async () => {
      const committed = await bus.admin.committed(group, topic)
      const partition = received[0]!.partition
      return committed.get(partition) === received.at(-1)!.offset + 1
    })
  })

  it('loses nothing acknowledged when writes start failing in the middle of concurrent publishing', async () => {
    const topic = uniqueName('faults-busy')
    await bus.admin.createTopics([{ name: topic, partitions: 4 }])
    const received = await collect(topic)
    const publishers = 8
    const acked = Array.from({ length: publishers }, () => [] as number[])
    let stop = false
    let afterRecovery = false
    const ackedAfter = new Array<number>(publishers).fill(0)
    const run = async (p: number): Promise<void> => {
      for (let seq = 0; !stop; seq++) {
        try {
          await bus.publish([{ topic, key: `device-${p}`, value: Buffer.from(`${p}:${seq}`) }])
          acked[p]!.push(seq)
          if (afterRecovery) ackedAfter[p]!++
        } catch {
          // refused: the device would send it again; this one moves on to the next
          await new Promise((resolve) => setTimeout(resolve, 10))
        }
      }
    }
    const running = Array.from({ length: publishers }, (_, p) => run(p))
    try {
      await waitUntil(() => acked.every((a) => a.length >= 20), { timeoutMs: 30_000 })
      await faulty.outage.begin()
      await waitUntil(() => acked.flat().length > 0) // still counting while it fails
      const before = acked.map((a) => a.length)
      await new Promise((resolve) => setTimeout(resolve, 300))
      await faulty.outage.end()
      afterRecovery = true
      await waitUntil(() => ackedAfter.every((n) => n >= 20), {
        timeoutMs: 90_000,
        message: () =>
          `acknowledged after recovery: ${ackedAfter.join(',')} (before the outage ${before.join(',')})`,
      })
    } finally {
      stop = true
      await Promise.all(running)
    }
    const expected = acked.flatMap((seqs, p) => seqs.map((seq) => `${p}:${seq}`))
    const missing = (): string[] => {
      const seen = new Set(received.map((m) => m.value!.toString()))
      return expected.filter((v) => !seen.has(v))
    }
    await waitUntil(() => missing().length === 0, {
      timeoutMs: 60_000,
      message: () =>
        `${missing().length} of ${expected.length} acknowledged records missing: ${missing().slice(0, 10).join(', ')}`,
    })
    for (let p = 0; p < publishers; p++) {
      const sequence = received
        .filter((m) => m.key === `device-${p}`)
        .map((m) => Number(m.value!.toString().split(':')[1]))
      const ackedSet = new Set(acked[p])
      // Every acknowledged record arrived, in the order it was published (and exactly once where
      // nothing can be redelivered).
      expect([...new Set(sequence)].filter((s) => ackedSet.has(s))).toEqual(acked[p])
      if (!faulty.atLeastOnce) expect(sequence).toEqual(acked[p])
    }
  })
})
