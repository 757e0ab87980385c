// The processor on the embedded bus with a PGlite registry, the outbox relay and the cached auth:
// ingress events reach the tenant topic or the dead letter, in order per device, and input offsets
// are committed only after the output is durable (a publish held or failed at the bus port).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BusMessage, EventBus, OutgoingRecord } from '../../core/bus/bus.ts'
import type { EmbeddedBus } from '../../core/bus/embedded/index.ts'
import { createEmbeddedBus } from '../../core/bus/embedded/index.ts'
import { createMemoryCluster } from '../../core/cluster/memory.ts'
import { buildEvent, eventTypes } from '../../core/events/build.ts'
import { encodeBinary } from '../../core/events/kafka-codec.ts'
import { topicNames } from '../../core/events/topics.ts'
import { silentLogger } from '../../core/log.ts'
import type { RegistryAuth } from '../../core/registry/auth.ts'
import { createRegistryAuth } from '../../core/registry/auth.ts'
import type { OutboxRelay } from '../../core/registry/outbox.ts'
import { createOutboxRelay } from '../../core/registry/outbox.ts'
import { createSecrets } from '../../core/registry/secrets.ts'
import type { RegistryService } from '../../core/registry/service.ts'
import { createRegistryService } from '../../core/registry/service-impl.ts'
import type { RegistryStore } from '../../core/registry/store.ts'
import { DETAIL_HEADER, REASON_HEADER, STEP_HEADER } from '../../processors/deadletter.ts'
import type { Processor } from '../../processors/index.ts'
import { createProcessor } from '../../processors/index.ts'
import { deferred, uniqueName, waitUntil } from '../helpers/wait.ts'
import type { Engine } from '../core/registry/store-implementations.ts'
import { pgliteEngine } from '../core/registry/store-implementations.ts'

const topics = topicNames('tp')

function ingress(tenant: string, device: string, seq: number, sender?: string): OutgoingRecord {
  const event = buildEvent({
    kind: 'telemetry',
    tenant,
    device,
    sender,
    protocol: 'http',
    subject: 'seq',
    data: Buffer.from(JSON.stringify({ seq })),
    datacontenttype: 'application/json',
  })
  const { key, value, headers } = encodeBinary(event)
  return { topic: topics.ingress, key: key?.toString(), value, headers }
}

/** Every record of a topic so far, read by a throwaway group from the start. */
async function readAll(
  bus: EventBus,
  topic: string,
  count: number,
  match: (m: BusMessage) => boolean = () => true,
): Promise<BusMessage[]> {
  const got: BusMessage[] = []
  // Tenant and copy topics appear with the first event the processor publishes to them.
  await waitUntil(async () => (await bus.admin.listTopics()).includes(topic), {
    message: () => `${topic} exists`,
  })
  const sub = await bus.subscribe({
    group: uniqueName('reader'),
    topics: [topic],
    from: 'earliest',
    handler: async (batch) => void got.push(...batch.filter(match)),
  })
  try {
    await waitUntil(() => got.length >= count, { message: () => `${got.length}/${count} on ${topic}` })
  } finally {
    await sub.close()
  }
  return got
}

/** Tenant topics also carry the tenant's registry changes; most checks look at telemetry only. */
const isTelemetry = (m: BusMessage): boolean => m.headers.get('ce_type')?.toString() === eventTypes.telemetry
const seqOf = (m: BusMessage): number => (JSON.parse(m.value!.toString()) as { seq: number }).seq

describe('processors on the embedded bus and PGlite', () => {
  let engine: Engine
  let dir: string
  let bus: EmbeddedBus
  let store: RegistryStore
  let relay: OutboxRelay
  let registry: RegistryService
  let auth: RegistryAuth
  let processor: Processor | undefined
  // A bus at the port that can hold or fail the processor's publishes; everything else is real.
  let gate: Promise<void> | undefined
  let failNext = 0
  let publishes = 0
  const tenant = uniqueName('t').toLowerCase().slice(0, 40)

  beforeAll(async () => {
    engine = pgliteEngine()
    dir = await mkdtemp(join(tmpdir(), 'tributary-processors-'))
    bus = await createEmbeddedBus({ dataDir: dir })
    await bus.admin.createTopics(
      [topics.ingress, topics.registry, topics.deadletter].map((name) => ({ name, partitions: 3 })),
    )
    store = await engine.open()
    relay = createOutboxRelay({ store, bus, topic: topics.registry, log: silentLogger, pollMs: 50 })
    const secrets = createSecrets(Buffer.alloc(32, 3), { scryptLogN: 12 })
    registry = createRegistryService({ store, secrets, onChange: () => relay.nudge() })
    auth = createRegistryAuth({
      store,
      bus,
      topic: topics.registry,
      secrets,
      cacheTtlMs: 60_000,
      log: silentLogger,
    })
    await relay.start()
    await auth.start()
    const faulty: EventBus = Object.create(bus) as EventBus
    Object.assign(faulty, {
      publish: async (records: readonly OutgoingRecord[]) => {
        publishes++
        if (gate !== undefined) await gate
        if (failNext > 0) {
          failNext--
          throw new Error('injected publish failure')
        }
        return bus.publish(records)
      },
    })
    processor = createProcessor(
      { topics, topicPartitions: 2, retryBackoffMs: 20 },
      { bus: faulty, auth, cluster: createMemoryCluster({ log: silentLogger }), log: silentLogger },
    )
    await processor.start()
  })

  afterAll(async () => {
    await Promise.allSettled([processor?.stop(), auth?.stop(), relay?.stop()])
    await store?.close()
    await bus?.close()
    await engine?.destroy()
    await rm(dir, { recursive: true, force: true })
  })

  it('creates the tenant topic when the tenant is created', async () => {
    await registry.createTenant(tenant, {})
    await waitUntil(async () => (await bus.admin.listTopics()).includes(topics.events(tenant)))
    expect((await bus.admin.describeTopic(topics.events(tenant)))?.partitions).toBe(2)
    await registry.createDevice(tenant, 'gw', {})
    await registry.createDevice(tenant, 'd1', { gateways: ['gw'] })
    await registry.createDevice(tenant, 'd2', {})
    await registry.createDevice(tenant, 'off', { enabled: false })
    // The registry's changes of the tenant reach its topic too, keyed by device.
    const changes = await readAll(bus, topics.events(tenant), 5, (m) => !isTelemetry(m))
    // Keyed by device, so spread over partitions: compare as sets.
    expect(changes.map((m) => `${m.headers.get('ce_type')?.toString()} ${m.key}`).sort()).toEqual(
      [tenant, ...['gw', 'd1', 'd2', 'off'].map((d) => `${tenant}/${d}`)]
        .map((k) => `${eventTypes.registry} ${k}`)
        .sort(),
    )
    const gw = changes.find((m) => m.key === `${tenant}/gw`)!
    expect(JSON.parse(gw.value!.toString())).toMatchObject({
      op: 'created',
      resource: 'device',
      device: 'gw',
    })
  })

  it('routes accepted events to the tenant topic in order and refused ones to the dead letter', async () => {
    const records: OutgoingRecord[] = []
    for (let seq = 0; seq < 30; seq++) {
      records.push(ingress(tenant, 'd1', seq, seq % 3 === 0 ? 'gw' : undefined), ingress(tenant, 'd2', seq))
    }
    records.push(ingress(tenant, 'off', 0), ingress(tenant, 'ghost', 0), ingress(tenant, 'd2', 99, 'gw'))
    records.push({ topic: topics.ingress, key: `${tenant}/d1`, value: Buffer.from('not an event') })
    await bus.publish(records)

    const events = await readAll(bus, topics.events(tenant), 60, isTelemetry)
    expect(events).toHaveLength(60)
    for (const device of ['d1', 'd2']) {
      const mine = events.filter((m) => m.headers.get('ce_device')?.toString() === device)
      expect(mine.map(seqOf)).toEqual([...Array(30).keys()])
      expect(new Set(mine.map((m) => m.partition)).size).toBe(1)
      expect(mine[0]!.key).toBe(`${tenant}/${device}`)
    }
    const viaGateway = events.find((m) => m.headers.get('ce_sender') !== undefined)
    expect(viaGateway?.headers.get('ce_sender')?.toString()).toBe('gw')
    expect(viaGateway?.headers.get('ce_type')?.toString()).toBe('io.tributary.telemetry.v1')
    expect(viaGateway?.headers.get('content-type')?.toString()).toBe('application/json')

    const dead = await readAll(bus, topics.deadletter, 4)
    const reasons = dead.map(
      (m) => `${m.headers.get(STEP_HEADER)?.toString()}:${m.headers.get(REASON_HEADER)?.toString()}`,
    )
    expect(reasons.sort()).toEqual([
      'authorize:device-disabled',
      'authorize:device-unknown',
      'authorize:gateway-not-allowed',
      'decode:event-invalid',
    ])
    const garbage = dead.find((m) => m.headers.get(STEP_HEADER)?.toString() === 'decode')
    expect(garbage?.value?.toString()).toBe('not an event')
  })

  it('commits input offsets only after the output is durable', async () => {
    const held = deferred()
    gate = held.promise
    const before = publishes
    const committedBefore = await bus.admin.committed(topics.groups.processors, topics.ingress)
    const [ack] = await bus.publish([ingress(tenant, 'd2', 500)])
    await waitUntil(() => publishes > before)
    // The handler is stuck in publish: its input offset must not be committed yet.
    expect((await bus.admin.committed(topics.groups.processors, topics.ingress)).get(ack!.partition)).toBe(
      committedBefore.get(ack!.partition),
    )
    gate = undefined
    held.resolve()
    await waitUntil(
      async () =>
        (await bus.admin.committed(topics.groups.processors, topics.ingress)).get(ack!.partition) ===
        ack!.offset + 1,
    )
    const events = await readAll(bus, topics.events(tenant), 61, isTelemetry)
    expect(events.filter((m) => seqOf(m) === 500)).toHaveLength(1)
  })

  it('redelivers a batch whose publish failed, losing nothing', async () => {
    failNext = 1
    const before = publishes
    const [ack] = await bus.publish([ingress(tenant, 'd1', 600), ingress(tenant, 'd1', 601)])
    await waitUntil(
      async () =>
        (await bus.admin.committed(topics.groups.processors, topics.ingress)).get(ack!.partition) ===
        ack!.offset + 2,
    )
    expect(failNext).toBe(0)
    expect(publishes - before).toBeGreaterThanOrEqual(2)
    const events = await readAll(bus, topics.events(tenant), 63, isTelemetry)
    const d1 = events.filter((m) => m.headers.get('ce_device')?.toString() === 'd1').map(seqOf)
    expect(d1.slice(-2)).toEqual([600, 601])
  })

  it('dead-letters events of a device disabled after the adapter accepted them', async () => {
    await registry.updateDevice(tenant, 'd2', { enabled: false })
    await waitUntil(async () => (await auth.findDevice(tenant, 'd2'))?.enabled === false)
    await bus.publish([ingress(tenant, 'd2', 700)])
    const dead = await readAll(bus, topics.deadletter, 5)
    const last = dead.find((m) => m.value !== undefined && m.value.toString().includes('700'))
    expect(last?.headers.get(REASON_HEADER)?.toString()).toBe('device-disabled')
  })

  it('applies the tenant’s quotas, channel schema and route rules from the registry, and their changes', async () => {
    const t2 = `${tenant.slice(0, 36)}-cfg`
    await registry.createTenant(t2, { quotas: { maxPayloadBytes: 64 } })
    await registry.createDevice(t2, 'm', { labels: { zone: 'a' } })
    await registry.putChannelSchema(t2, 'power', {
      type: 'object',
      required: ['w'],
      properties: { w: { type: 'number' } },
    })
    await registry.putRouteTable(t2, [
      {
        name: 'zone-a',
        match: { labels: { zone: 'a' }, channel: 'power' },
        actions: [
          { action: 'set-extension', name: 'zone', value: 'a' },
          { action: 'copy', topic: 'zone-a' },
        ],
      },
      { name: 'quiet', match: { channel: 'debug/#' }, actions: [{ action: 'drop' }] },
    ])
    const send = (channel: string, data: string) => {
      const { key, value, headers } = encodeBinary(
        buildEvent({
          kind: 'telemetry',
          tenant: t2,
          device: 'm',
          protocol: 'http',
          subject: channel,
          data: Buffer.from(data),
          datacontenttype: 'application/json',
        }),
      )
      return { topic: topics.ingress, key: key?.toString(), value, headers }
    }
    await bus.publish([
      send('power', '{"w":1}'),
      send('power', '{"w":"high"}'),
      send('debug/x', '{}'),
      send('power', JSON.stringify({ w: 2, pad: 'x'.repeat(80) })),
      send('other', '{"w":3}'),
    ])
    const events = await readAll(bus, topics.events(t2), 2, isTelemetry)
    expect(events.map((m) => [m.value?.toString(), m.headers.get('ce_zone')?.toString()])).toEqual([
      ['{"w":1}', 'a'],
      ['{"w":3}', undefined],
    ])
    const copies = await readAll(bus, topics.tenantCopy(t2, 'zone-a'), 1)
    expect(copies.map((m) => m.value?.toString())).toEqual(['{"w":1}'])
    const mine = async (count: number) =>
      (await readAll(bus, topics.deadletter, 5 + count)).filter(
        (m) => m.headers.get('ce_tenant')?.toString() === t2,
      )
    const dead = await mine(2)
    expect(
      dead.map(
        (m) => `${m.headers.get(STEP_HEADER)?.toString()}:${m.headers.get(REASON_HEADER)?.toString()}`,
      ),
    ).toEqual(['validate:schema-invalid', 'tenancy:payload-too-large'])
    expect(JSON.parse(dead[0]!.headers.get(DETAIL_HEADER)?.toString() ?? '[]')).toEqual([
      { path: '/w', message: 'must be number' },
    ])

    // The registry's change events reach the processor's caches: a deleted schema no longer applies.
    await registry.deleteChannelSchema(t2, 'power')
    await waitUntil(async () => (await auth.channelSchema(t2, 'power')) === undefined)
    await bus.publish([send('power', '{"w":"now fine"}')])
    const later = await readAll(bus, topics.events(t2), 3, isTelemetry)
    expect(later.map((m) => m.value?.toString())).toContain('{"w":"now fine"}')
  })

  it('dead-letters events whose credential was revoked after acceptance, and keeps credentials off tenant topics', async () => {
    const t3 = `${tenant.slice(0, 36)}-cred`
    await registry.createTenant(t3, {})
    await registry.createDevice(t3, 'p', {})
    const live = await registry.createCredential(t3, 'p', { type: 'token' })
    const revoked = await registry.createCredential(t3, 'p', { type: 'token' })
    await registry.deleteCredential(t3, 'p', revoked.credential.id)
    await waitUntil(async () => (await auth.findCredential(t3, 'p', revoked.credential.id)) === undefined)
    const send = (credential: string, seq: number) => {
      const { key, value, headers } = encodeBinary(
        buildEvent({
          kind: 'telemetry',
          tenant: t3,
          device: 'p',
          protocol: 'http',
          subject: 'seq',
          data: Buffer.from(JSON.stringify({ seq })),
          datacontenttype: 'application/json',
          credential,
        }),
      )
      return { topic: topics.ingress, key: key?.toString(), value, headers }
    }
    await bus.publish([send(live.credential.id, 1), send(revoked.credential.id, 2)])
    const events = await readAll(bus, topics.events(t3), 1, isTelemetry)
    expect(events.map(seqOf)).toEqual([1])
    expect(events[0]!.headers.has('ce_credential')).toBe(false)
    const dead = (await readAll(bus, topics.deadletter, 8)).filter(
      (m) => m.headers.get('ce_tenant')?.toString() === t3,
    )
    expect(dead.map((m) => [seqOf(m), m.headers.get(REASON_HEADER)?.toString()])).toEqual([
      [2, 'credential-revoked'],
    ])
  })
})
