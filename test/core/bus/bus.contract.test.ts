// The EventBus contract: every implementation (embedded file log, Kafka) must pass all of it.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { BusMessage, EventBus, Subscription } from '../../../core/bus/bus.ts'
import { isTributaryError } from '../../../core/errors.ts'
import { uniqueName, waitUntil } from '../../helpers/wait.ts'
import type { BusDescription } from './implementations.ts'
import { TEST_MAX_MESSAGE_BYTES, embeddedDescription, kafkaDescription, openBus } from './implementations.ts'

const implementations: Array<{ name: string; describe: () => BusDescription }> = [
  { name: 'embedded', describe: embeddedDescription },
  { name: 'kafka', describe: () => kafkaDescription(inject('kafkaBrokers')) },
]

const child = fileURLToPath(new URL('./bus-child.ts', import.meta.url))

describe.each(implementations)('EventBus contract: $name', ({ describe: describeBus }) => {
  let description: BusDescription
  let bus: EventBus
  const subscriptions: Subscription[] = []

  beforeAll(async () => {
    description = describeBus()
    bus = await openBus(description)
  })

  afterAll(async () => {
    await Promise.allSettled(subscriptions.map((s) => s.close()))
    await bus.close()
  })

  async function topic(partitions = 1): Promise<string> {
    const name = uniqueName('contract')
    await bus.admin.createTopics([{ name, partitions }])
    return name
  }

  /** Subscribes and keeps what arrives; `messages` grows as batches are handled. */
  async function collect(
    options: {
      topic: string
      group?: string
      from?: Parameters<EventBus['subscribe']>[0]['from']
      commit?: boolean
      onBatch?: (batch: readonly BusMessage[]) => Promise<void> | void
    },
    on: EventBus = bus,
  ): Promise<{ messages: BusMessage[]; subscription: Subscription }> {
    const messages: BusMessage[] = []
    const subscription = await on.subscribe({
      group: options.group ?? uniqueName('group'),
      topics: [options.topic],
      from: options.from ?? 'earliest',
      commit: options.commit,
      retryBackoffMs: 20,
      handler: async (batch) => {
        await options.onBatch?.(batch)
        messages.push(...batch)
      },
    })
    if (on === bus) subscriptions.push(subscription)
    return { messages, subscription }
  }

  const values = (messages: readonly BusMessage[]): string[] => messages.map((m) => m.value?.toString() ?? '')

  it('creates topics idempotently and describes them', async () => {
    const name = uniqueName('admin')
    await bus.admin.createTopics([{ name, partitions: 3, config: { retentionMs: 3_600_000 } }])
    await bus.admin.createTopics([{ name, partitions: 3 }])
    const described = await bus.admin.describeTopic(name)
    expect(described).toMatchObject({ name, partitions: 3, config: { retentionMs: 3_600_000 } })
    expect(await bus.admin.listTopics()).toContain(name)
    expect(await bus.admin.describeTopic(uniqueName('missing'))).toBeUndefined()
    await bus.admin.deleteTopics([name])
    await waitUntil(async () => !(await bus.admin.listTopics()).includes(name))
  })

  it('acknowledges with partition and offset, and keeps order per key', async () => {
    const name = await topic(4)
    const keys = ['a', 'b', 'c', 'd', 'e']
    // Many concurrent publish calls, each with records of several keys.
    const calls = Array.from({ length: 40 }, (_, call) =>
      bus.publish(keys.map((key) => ({ topic: name, key, value: Buffer.from(`${key}:${call}`) }))),
    )
    const acks = (await Promise.all(calls)).flat()
    expect(acks).toHaveLength(200)
    for (const ack of acks) {
      expect(ack.topic).toBe(name)
      expect(ack.partition).toBeGreaterThanOrEqual(0)
      expect(ack.partition).toBeLessThan(4)
      expect(ack.offset).toBeGreaterThanOrEqual(0)
    }
    const { messages } = await collect({ topic: name })
    await waitUntil(() => messages.length >= 200, { message: () => `${messages.length} of 200 arrived` })
    for (const key of keys) {
      const sequence = messages
        .filter((m) => m.key === key)
        .map((m) => Number(m.value!.toString().split(':')[1]))
      expect(sequence).toEqual(Array.from({ length: 40 }, (_, i) => i))
      expect(new Set(messages.filter((m) => m.key === key).map((m) => m.partition)).size).toBe(1)
    }
  })

  it('delivers headers, keys, values and timestamps as published', async () => {
    const name = await topic()
    const headers = new Map([
      ['ce_id', Buffer.from('1')],
      ['binary', Buffer.from([0, 1, 2, 255])],
    ])
    await bus.publish([
      { topic: name, key: 'k', value: Buffer.from('v'), headers, timestamp: 1_700_000_000_000 },
      { topic: name },
    ])
    const { messages } = await collect({ topic: name })
    await waitUntil(() => messages.length === 2)
    const [first, second] = messages
    expect(first!.key).toBe('k')
    expect(first!.value?.toString()).toBe('v')
    expect(first!.timestamp).toBe(1_700_000_000_000)
    expect([...first!.headers.entries()].map(([k, v]) => [k, [...v]])).toEqual([
      ['ce_id', [...Buffer.from('1')]],
      ['binary', [0, 1, 2, 255]],
    ])
    expect(second!.key).toBeUndefined()
    expect(second!.value === undefined || second!.value.length === 0).toBe(true)
  })

  it('redelivers a batch whose handler failed, before anything after it', async () => {
    const name = await topic()
    await bus.publish(['r0', 'r1', 'r2', 'r3'].map((v) => ({ topic: name, key: 'k', value: Buffer.from(v) })))
    let failures = 0
    const seen: string[] = []
    const subscription = await bus.subscribe({
      group: uniqueName('group'),
      topics: [name],
      from: 'earliest',
      maxBatch: 1,
      retryBackoffMs: 10,
      handler: async (batch) => {
        const value = batch[0]!.value!.toString()
        seen.push(value)
        if (value === 'r1' && failures < 2) {
          failures++
          throw new Error('handler failed')
        }
      },
    })
    subscriptions.push(subscription)
    await waitUntil(() => seen.includes('r3'))
    expect(seen).toEqual(['r0', 'r1', 'r1', 'r1', 'r2', 'r3'])
  })

  it('commits only what was handled: a new member of the group resumes after it', async () => {
    const name = await topic()
    const group = uniqueName('group')
    await bus.publish(['a', 'b', 'c'].map((v) => ({ topic: name, value: Buffer.from(v) })))
    const first = await collect({ topic: name, group })
    await waitUntil(() => first.messages.length === 3)
    await first.subscription.close()
    await bus.publish([{ topic: name, value: Buffer.from('d') }])
    const second = await collect({ topic: name, group })
    await waitUntil(() => second.messages.length >= 1)
    expect(values(second.messages)).toEqual(['d'])
    const committed = await bus.admin.committed(group, name)
    await waitUntil(async () => (await bus.admin.committed(group, name)).get(0) === 4, {
      message: () => `committed ${JSON.stringify([...committed])}`,
    })
  })

  it('leaves no committed offsets behind for a reader that does not commit', async () => {
    const name = await topic()
    const group = uniqueName('tail')
    await bus.publish(['a', 'b'].map((v) => ({ topic: name, value: Buffer.from(v) })))
    const tail = await collect({ topic: name, group, commit: false })
    await waitUntil(() => tail.messages.length === 2)
    await bus.publish([{ topic: name, value: Buffer.from('c') }])
    // Its place is kept in memory: it goes on reading without redelivering.
    await waitUntil(() => tail.messages.length === 3)
    expect(values(tail.messages)).toEqual(['a', 'b', 'c'])
    await tail.subscription.close()
    expect([...(await bus.admin.committed(group, name))]).toEqual([])
  })

  it('splits partitions between two members of one group', async () => {
    const name = await topic(4)
    const group = uniqueName('group')
    const a = await collect({ topic: name, group })
    const b = await collect({ topic: name, group })
    await waitUntil(
      () => {
        const owned = [...a.subscription.assignments(), ...b.subscription.assignments()]
        return (
          a.subscription.assignments().length > 0 &&
          b.subscription.assignments().length > 0 &&
          new Set(owned).size === 4 &&
          owned.length === 4
        )
      },
      {
        timeoutMs: 30_000,
        message: () => `a=${a.subscription.assignments().join()} b=${b.subscription.assignments().join()}`,
      },
    )
    const records = Array.from({ length: 100 }, (_, i) => ({
      topic: name,
      key: `device-${i}`,
      value: Buffer.from(String(i)),
    }))
    await bus.publish(records)
    await waitUntil(() => a.messages.length + b.messages.length >= 100, { timeoutMs: 30_000 })
    const all = [...values(a.messages), ...values(b.messages)].map(Number).sort((x, y) => x - y)
    expect(all).toEqual(Array.from({ length: 100 }, (_, i) => i))
    const partitionsOf = (ms: BusMessage[]): Set<number> => new Set(ms.map((m) => m.partition))
    const overlap = [...partitionsOf(a.messages)].filter((p) => partitionsOf(b.messages).has(p))
    expect(overlap).toEqual([])
  })

  it('gives every group every record', async () => {
    const name = await topic(2)
    await bus.publish(
      Array.from({ length: 20 }, (_, i) => ({ topic: name, key: `k${i}`, value: Buffer.from(String(i)) })),
    )
    const one = await collect({ topic: name })
    const two = await collect({ topic: name })
    await waitUntil(() => one.messages.length === 20 && two.messages.length === 20)
    expect(values(one.messages).sort()).toEqual(values(two.messages).sort())
  })

  it('replays by offset, at subscribe time and by seeking', async () => {
    const name = await topic()
    await bus.publish(Array.from({ length: 10 }, (_, i) => ({ topic: name, value: Buffer.from(String(i)) })))
    const { messages, subscription } = await collect({
      topic: name,
      from: { offsets: [{ topic: name, partition: 0, offset: 4 }] },
    })
    await waitUntil(() => messages.length === 6)
    expect(messages.map((m) => m.offset)).toEqual([4, 5, 6, 7, 8, 9])
    await subscription.seek({ offsets: [{ topic: name, partition: 0, offset: 7 }] })
    await waitUntil(() => messages.length === 9)
    expect(messages.slice(6).map((m) => m.offset)).toEqual([7, 8, 9])
    await subscription.seek('earliest')
    await waitUntil(() => messages.length === 19)
    expect(messages.slice(9).map((m) => m.offset)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  })

  it('replays by time', async () => {
    const name = await topic()
    const base = Date.now() - 60_000
    await bus.publish(
      Array.from({ length: 10 }, (_, i) => ({
        topic: name,
        value: Buffer.from(String(i)),
        timestamp: base + i * 1000,
      })),
    )
    const { messages, subscription } = await collect({ topic: name, from: { time: base + 5000 } })
    await waitUntil(() => messages.length === 5)
    expect(values(messages)).toEqual(['5', '6', '7', '8', '9'])
    await subscription.seek({ time: base + 8500 })
    await waitUntil(() => messages.length === 6)
    expect(values(messages.slice(5))).toEqual(['9'])
  })

  it("starts a new group at 'latest' by default", async () => {
    const name = await topic()
    await bus.publish([{ topic: name, value: Buffer.from('old') }])
    const messages: BusMessage[] = []
    const subscription = await bus.subscribe({
      group: uniqueName('group'),
      topics: [name],
      handler: async (b) => void messages.push(...b),
    })
    subscriptions.push(subscription)
    await bus.publish([{ topic: name, value: Buffer.from('new') }])
    await waitUntil(() => messages.length >= 1)
    expect(values(messages)).toEqual(['new'])
  })

  it('refuses an oversized record with a clear error and publishes nothing of that call', async () => {
    const name = await topic()
    const small = { topic: name, value: Buffer.from('small') }
    const big = { topic: name, value: Buffer.alloc(TEST_MAX_MESSAGE_BYTES + 1) }
    const error = await bus.publish([small, big]).then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(isTributaryError(error, 'BUS_RECORD_TOO_LARGE')).toBe(true)
    expect((error as Error).message).toMatch(/exceeds the \d+-byte limit/)
    const offsets = await bus.admin.offsets(name)
    expect(offsets).toEqual([{ partition: 0, earliest: 0, next: 0 }])
  })

  it('refuses unknown topics when publishing and subscribing', async () => {
    const missing = uniqueName('missing')
    const publishError = await bus.publish([{ topic: missing, value: Buffer.from('x') }]).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(isTributaryError(publishError, 'BUS_UNKNOWN_TOPIC')).toBe(true)
    const subscribeError = await bus
      .subscribe({ group: 'g', topics: [missing], handler: async () => undefined })
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(isTributaryError(subscribeError, 'BUS_UNKNOWN_TOPIC')).toBe(true)
  })

  it('pauses and resumes delivery', async () => {
    const name = await topic()
    const { messages, subscription } = await collect({ topic: name })
    subscription.pause()
    expect(subscription.paused).toBe(true)
    await bus.publish([{ topic: name, value: Buffer.from('while paused') }])
    // A negative check needs a window: nothing may arrive while paused.
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(messages).toHaveLength(0)
    subscription.resume()
    await waitUntil(() => messages.length === 1)
    expect(values(messages)).toEqual(['while paused'])
  })

  it('closes a subscription only after its in-flight batch finished and was committed', async () => {
    const name = await topic()
    const group = uniqueName('group')
    await bus.publish([{ topic: name, value: Buffer.from('slow') }])
    let release!: () => void
    const started = Promise.withResolvers<void>()
    const sub = await bus.subscribe({
      group,
      topics: [name],
      from: 'earliest',
      handler: async () => {
        started.resolve()
        await new Promise<void>((resolve) => (release = resolve))
      },
    })
    await started.promise
    let closed = false
    const closing = sub.close().then(() => (closed = true))
    await new Promise((resolve) => setImmediate(resolve))
    expect(closed).toBe(false)
    release()
    await closing
    await waitUntil(async () => (await bus.admin.committed(group, name)).get(0) === 1)
  })

  it('redelivers what a killed consumer process had not committed', async () => {
    const name = await topic()
    const group = uniqueName('group')
    await bus.publish(
      Array.from({ length: 10 }, (_, i) => ({ topic: name, key: 'k', value: Buffer.from(String(i)) })),
    )
    // The embedded log belongs to one process at a time: hand it over to the child.
    await bus.close()
    const proc = spawn(
      process.execPath,
      [child, JSON.stringify(description), 'consume-then-hang', name, group, '5'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
    try {
      await lineMatching(proc, (fact) => fact['received'] === 5)
    } finally {
      proc.kill('SIGKILL')
      await new Promise((resolve) => proc.once('exit', resolve))
    }
    bus = await openBus(description)
    const { messages } = await collect({ topic: name, group })
    await waitUntil(() => messages.some((m) => m.offset === 9), { timeoutMs: 45_000 })
    const offsets = messages.map((m) => m.offset)
    // At least once: nothing from the uncommitted offset 5 on is lost; earlier ones may repeat.
    expect(offsets.slice(offsets.indexOf(5))).toEqual([5, 6, 7, 8, 9])
    expect(offsets[0]).toBeLessThanOrEqual(5)
  })
})

async function lineMatching(
  proc: ChildProcess,
  match: (fact: Record<string, unknown>) => boolean,
): Promise<void> {
  const lines = createInterface({ input: proc.stdout! })
  const exited = new Promise<never>((_, reject) =>
    proc.once('exit', (code) => reject(new Error(`child exited with ${code}`))),
  )
  const found = (async () => {
    for await (const line of lines) if (match(JSON.parse(line) as Record<string, unknown>)) return
    throw new Error('child output ended')
  })()
  await Promise.race([found, exited])
}
