// The router: registry checks, ttl 0 (only if connected now), expired on arrival, queueing with an
// `accepted` status, telling the instances that hold a route, and dead-lettering what is no command.
import { describe, expect, it } from 'vitest'
import { createCommandMetrics } from '../../commands/metrics.ts'
import { createRouter } from '../../commands/router.ts'
import type { BusMessage, OutgoingRecord, SubscribeOptions } from '../../core/bus/bus.ts'
import { buildCommandEvent } from '../../core/events/commands.ts'
import { encodeBinary } from '../../core/events/kafka-codec.ts'
import { silentLogger } from '../../core/log.ts'
import type { Device, Tenant } from '../../core/registry/model.ts'
import { fakeQueue, recordingStatuses } from './fakes.ts'

const now = new Date('2026-06-01T12:00:00.000Z')

function setup(options: { routes?: Record<string, string[]>; reachable?: boolean } = {}) {
  const queue = fakeQueue()
  const statuses = recordingStatuses()
  const published: OutgoingRecord[] = []
  const sent: Array<[string, string]> = []
  const kicked: string[] = []
  let handler: SubscribeOptions['handler'] | undefined
  const devices: Record<string, Partial<Device>> = {
    d1: { enabled: true, gateways: ['gw'] },
    off: { enabled: false, gateways: [] },
  }
  const router = createRouter({
    bus: {
      subscribe: async (o) => {
        handler = o.handler
        return {} as never
      },
      publish: async (records) => (published.push(...records), []),
    },
    topics: { commands: 't.commands', commandsGroup: 't-commands' },
    queue,
    cluster: {
      instance: 'me',
      routes: async ({ device }) => options.routes?.[device] ?? [],
      send: async (instance, _topic, body) => void sent.push([instance, body]),
    },
    tenant: async (id) => (id === 'acme' ? ({ id, enabled: true } as Tenant) : undefined),
    findDevice: async (_t, id) => devices[id] as Device | undefined,
    dispatcher: {
      kick: (t, d) => void kicked.push(`${t}/${d}`),
      reachable: async () => options.reachable ?? false,
    },
    statuses,
    deadLetter: (message, reason, detail) => ({
      topic: 't.deadletter',
      key: message.key,
      value: message.value,
      headers: new Map([['reason', Buffer.from(`${reason}:${detail}`)]]),
    }),
    metrics: createCommandMetrics(undefined),
    log: silentLogger,
    defaultTtlMs: 60_000,
    now: () => now,
  })
  const deliver = async (...values: Array<ReturnType<typeof buildCommandEvent> | Buffer>) => {
    const batch: BusMessage[] = values.map((v, offset) => {
      if (Buffer.isBuffer(v))
        return {
          topic: 't.commands',
          partition: 0,
          offset,
          timestamp: now.getTime(),
          key: 'k',
          value: v,
          headers: new Map(),
        }
      const { key, value, headers } = encodeBinary(v)
      return {
        topic: 't.commands',
        partition: 0,
        offset,
        timestamp: now.getTime(),
        key: key?.toString(),
        value,
        headers,
      }
    })
    await handler!(batch)
  }
  return { router, queue, statuses, published, sent, kicked, deliver }
}

const make = (over: Partial<Parameters<typeof buildCommandEvent>[0]> = {}) =>
  buildCommandEvent({
    tenant: 'acme',
    device: 'd1',
    name: 'reboot',
    payload: Buffer.from('x'),
    ttlMs: 30_000,
    origin: 'api',
    time: now,
    ...over,
  })

describe('command router', () => {
  it('queues a command, writes accepted, and tells every instance holding the device or its gateway', async () => {
    const s = setup({ routes: { d1: ['me', 'b'], gw: ['c'] } })
    await s.router.start()
    const event = make()
    await s.deliver(event)
    expect(await s.queue.depth()).toBe(1)
    expect(s.statuses.of(event.attributes.id)).toEqual(['accepted'])
    expect(s.sent.map(([i]) => i).sort()).toEqual(['b', 'c'])
    expect(s.kicked).toEqual(['acme/d1'])
  })

  it('ends commands for unknown tenants and devices, disabled devices, and late arrivals with a status', async () => {
    const s = setup()
    await s.router.start()
    const cases = [
      [make({ tenant: 'ghost' }), 'failed:tenant-unknown'],
      [make({ device: 'nobody' }), 'failed:device-unknown'],
      [make({ device: 'off' }), 'failed:device-disabled'],
      [make({ time: new Date(now.getTime() - 60_000) }), 'expired:ttl'],
    ] as const
    for (const [event] of cases) await s.deliver(event)
    for (const [event, status] of cases) expect(s.statuses.of(event.attributes.id)).toEqual([status])
    expect(await s.queue.depth()).toBe(0)
  })

  it('with ttl 0 expires a command for a device nobody holds, and queues it briefly for one that is held', async () => {
    const offline = setup()
    await offline.router.start()
    const lost = make({ ttlMs: 0 })
    await offline.deliver(lost)
    expect(offline.statuses.of(lost.attributes.id)).toEqual(['expired:not-connected'])
    const held = setup({ routes: { d1: ['b'] } })
    await held.router.start()
    const kept = make({ ttlMs: 0 })
    await held.deliver(kept)
    expect(held.statuses.of(kept.attributes.id)).toEqual(['accepted'])
    expect(held.queue.rows[0]!.command.expiresAt.getTime()).toBeGreaterThan(now.getTime())
    const ttn = setup({ reachable: true })
    await ttn.router.start()
    await ttn.deliver(make({ ttlMs: 0 }))
    expect(await ttn.queue.depth()).toBe(1)
  })

  it('ends a command for a device whose queue is full with failed, and tells nobody', async () => {
    const s = setup({ routes: { d1: ['b'] } })
    await s.router.start()
    s.queue.enqueue = async () => 'full'
    const event = make()
    await s.deliver(event)
    expect(s.statuses.of(event.attributes.id)).toEqual(['failed:queue-full'])
    expect(s.sent).toEqual([])
    expect(s.kicked).toEqual([])
  })

  it('dead-letters a record that is no command, and goes on with the next', async () => {
    const s = setup()
    await s.router.start()
    const good = make()
    await s.deliver(Buffer.from('not a cloudevent'), good)
    expect(s.published).toHaveLength(1)
    expect(s.published[0]!.headers?.get('reason')?.toString()).toMatch(/^command-invalid:/)
    expect(s.statuses.of(good.attributes.id)).toEqual(['accepted'])
  })
})
