// The dead-letter index on the embedded bus and on Kafka, with a PGlite registry: records that the
// processor's deadLetter() makes from encoded CloudEvents are listable per tenant, records without a
// known tenant are left out, a failed write is retried without losing or doubling a letter, a
// restarted index resumes where it stopped, and each tenant keeps its newest N.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { BusMessage, EventBus, OutgoingRecord } from '../../core/bus/bus.ts'
import { buildEvent } from '../../core/events/build.ts'
import { encodeBinary } from '../../core/events/kafka-codec.ts'
import type { TopicNames } from '../../core/events/topics.ts'
import { topicNames } from '../../core/events/topics.ts'
import { silentLogger } from '../../core/log.ts'
import type { DeadLetter } from '../../core/registry/model.ts'
import type { RegistryStore } from '../../core/registry/store.ts'
import { deadLetter } from '../../processors/deadletter.ts'
import type { DeadLetterIndex } from '../../processors/deadletter-index.ts'
import { createDeadLetterIndex } from '../../processors/deadletter-index.ts'
import type { BusDescription } from '../core/bus/implementations.ts'
import { embeddedDescription, kafkaDescription, openBus } from '../core/bus/implementations.ts'
import type { Engine } from '../core/registry/store-implementations.ts'
import { pgliteEngine } from '../core/registry/store-implementations.ts'
import { tenantId, tenantSpec } from '../core/registry/store-fixtures.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'

const buses: Array<{ name: string; describe: () => BusDescription }> = [
  { name: 'embedded', describe: embeddedDescription },
  { name: 'kafka', describe: () => kafkaDescription(inject('kafkaBrokers')) },
]

const failedAt = new Date('2026-02-03T04:05:06.000Z')

/** What the processor publishes when a step refuses an ingress event. */
function refused(
  topics: TopicNames,
  tenant: string,
  device: string,
  seq: number,
  refusal: { step: string; reason: string; detail?: string } = {
    step: 'authorize',
    reason: 'device-disabled',
  },
): { id: string; record: OutgoingRecord } {
  const event = buildEvent({
    kind: 'telemetry',
    tenant,
    device,
    protocol: 'http',
    subject: 'seq',
    data: Buffer.from(JSON.stringify({ seq })),
    datacontenttype: 'application/json',
  })
  const { key, value, headers } = encodeBinary(event)
  const ingress: BusMessage = {
    topic: topics.ingress,
    partition: 0,
    offset: seq,
    timestamp: Date.now(),
    key: key?.toString(),
    value,
    headers,
  }
  return {
    id: event.attributes.id,
    record: deadLetter(topics.deadletter, ingress, refusal.step, refusal.reason, failedAt, refusal.detail),
  }
}

/** Every letter of a tenant, newest first. */
async function listAll(store: RegistryStore, tenant: string): Promise<DeadLetter[]> {
  return (await store.listDeadLetters(tenant, { limit: 1000 })).items
}

describe.each(buses)('dead-letter index on the $name bus', ({ describe: describeBus }) => {
  let description: BusDescription
  let bus: EventBus
  let engine: Engine
  let store: RegistryStore
  let index: DeadLetterIndex | undefined
  const topics = topicNames(uniqueName('dl').replaceAll('-', '_'))
  const acme = tenantId()
  const beta = tenantId()
  // A store at the port that can fail the next writes; everything else is real.
  let failWrites = 0
  let writes = 0

  function start(keep = 1000): Promise<void> {
    const faulty: RegistryStore = Object.create(store) as RegistryStore
    Object.assign(faulty, {
      recordDeadLetters: async (letters: readonly DeadLetter[]) => {
        writes++
        if (failWrites > 0) {
          failWrites--
          throw new Error('injected database failure')
        }
        return store.recordDeadLetters(letters)
      },
    })
    index = createDeadLetterIndex(
      {
        topic: topics.deadletter,
        group: topics.groups.deadLetterIndex,
        keep,
        trimIntervalMs: 0,
        retryBackoffMs: 20,
      },
      { bus, store: faulty, log: silentLogger },
    )
    return index.start()
  }

  beforeAll(async () => {
    description = describeBus()
    bus = await openBus(description)
    await bus.admin.createTopics([{ name: topics.deadletter, partitions: 2 }])
    engine = pgliteEngine()
    store = await engine.open()
    await store.createTenant(acme, tenantSpec())
    await store.createTenant(beta, tenantSpec())
  })

  afterAll(async () => {
    await index?.stop()
    await bus?.close()
    await store?.close()
    await engine?.destroy()
  })

  it("lists each tenant's letters, newest first, leaving out records of no known tenant", async () => {
    await start()
    const sent = [
      refused(topics, acme, 'd1', 1),
      refused(topics, acme, 'd2', 2, {
        step: 'validate',
        reason: 'schema-invalid',
        detail: '[{"path":"/seq","message":"must be string"}]',
      }),
      refused(topics, beta, 'd1', 3, { step: 'passthrough', reason: 'tenant-unknown' }),
      refused(topics, tenantId(), 'd1', 4, { step: 'authorize', reason: 'tenant-unknown' }),
    ]
    const garbage: OutgoingRecord = deadLetter(
      topics.deadletter,
      {
        topic: topics.ingress,
        partition: 0,
        offset: 5,
        timestamp: 0,
        key: `${acme}/d%3A3`,
        value: Buffer.from('not an event'),
        headers: new Map(),
      },
      'decode',
      'event-invalid',
      failedAt,
    )
    const orphan: OutgoingRecord = { topic: topics.deadletter, value: Buffer.from('no key, no headers') }
    await bus.publish([...sent.map((s) => s.record), garbage, orphan])

    await waitUntil(
      async () => (await listAll(store, acme)).length === 3 && (await listAll(store, beta)).length === 1,
    )
    const letters = await listAll(store, acme)
    const byId = new Map(letters.map((l) => [l.id, l]))
    expect(byId.get(sent[0]!.id)).toMatchObject({
      tenant: acme,
      device: 'd1',
      type: 'io.tributary.telemetry.v1',
      subject: 'seq',
      step: 'authorize',
      reason: 'device-disabled',
      detail: null,
      firstFailure: failedAt.toISOString(),
      contentType: 'application/json',
      data: Buffer.from('{"seq":1}').toString('base64'),
    })
    expect(byId.get(sent[1]!.id)).toMatchObject({
      step: 'validate',
      reason: 'schema-invalid',
      detail: '[{"path":"/seq","message":"must be string"}]',
    })
    const undecodable = letters.find((l) => l.step === 'decode')
    expect(undecodable).toMatchObject({ device: 'd:3', reason: 'event-invalid', type: null })
    expect(undecodable?.id).toBe(`${undecodable?.partition}-${undecodable?.offset}`)
    expect(Buffer.from(undecodable!.data!, 'base64').toString()).toBe('not an event')
    const order = letters.map((l) => [l.deadLetteredAt, l.partition, l.offset] as const)
    const sorted = [...order].sort((a, b) =>
      a[0] !== b[0] ? (a[0] < b[0] ? 1 : -1) : a[1] !== b[1] ? b[1] - a[1] : b[2] - a[2],
    )
    expect(order).toEqual(sorted)
    expect((await listAll(store, beta)).map((l) => l.id)).toEqual([sent[2]!.id])
  })

  it('retries a batch whose write failed: every letter once, none lost', async () => {
    failWrites = 1
    const before = writes
    const sent = [refused(topics, acme, 'd4', 10), refused(topics, acme, 'd4', 11)]
    await bus.publish(sent.map((s) => s.record))
    await waitUntil(async () => (await listAll(store, acme)).filter((l) => l.device === 'd4').length === 2)
    expect(failWrites).toBe(0)
    expect(writes - before).toBeGreaterThanOrEqual(2)
    const d4 = (await listAll(store, acme)).filter((l) => l.device === 'd4')
    expect(d4.map((l) => l.id).sort()).toEqual(sent.map((s) => s.id).sort())
  })

  it('commits what it stored: a restarted index goes on where it stopped', async () => {
    await waitUntil(async () => {
      const committed = await bus.admin.committed(topics.groups.deadLetterIndex, topics.deadletter)
      const ends = await bus.admin.offsets(topics.deadletter)
      return ends.every((p) => (committed.get(p.partition) ?? 0) === p.next)
    })
    await index?.stop()
    const during = refused(topics, beta, 'd9', 20)
    await bus.publish([during.record])
    const before = writes
    await start()
    await waitUntil(async () => (await listAll(store, beta)).some((l) => l.id === during.id))
    expect(writes - before).toBe(1)
    expect(await listAll(store, acme)).toHaveLength(5)
    expect(await listAll(store, beta)).toHaveLength(2)
  })

  it("keeps each tenant's newest N", async () => {
    await index?.stop()
    await start(3)
    const sent: Array<{ id: string }> = []
    for (let seq = 30; seq < 36; seq++) {
      const one = refused(topics, acme, 'd5', seq)
      sent.push(one)
      // One publish each, so their times and partitions order them as sent.
      await bus.publish([{ ...one.record, partition: 0 }])
    }
    const newest = sent.at(-1)!.id
    await waitUntil(async () => {
      const letters = await listAll(store, acme)
      return letters.length === 3 && letters[0]?.id === newest
    })
    expect((await listAll(store, acme)).map((l) => l.id)).toEqual(
      sent
        .slice(-3)
        .map((s) => s.id)
        .reverse(),
    )
    expect(await listAll(store, beta)).toHaveLength(2)
  })
})
