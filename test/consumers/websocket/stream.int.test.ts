// The event socket on a real API server and the embedded bus, read with the `ws` client: structured
// events, filters, replay from earliest / an offset / a time, a named group that resumes, shutdown.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { WsHarness } from './harness.ts'
import { open, startWsApi } from './harness.ts'
import { waitUntil } from '../../helpers/wait.ts'

let h: WsHarness

beforeAll(async () => {
  h = await startWsApi()
  for (const id of ['live', 'filters', 'replay', 'resume']) await h.registry.createTenant(id, {})
  await h.settle()
})

afterAll(async () => {
  await h.close()
})

const devices = (events: Array<Record<string, unknown>>) => events.map((e) => e['device'])

describe('WebSocket event stream', () => {
  it('sends each event published after the open as a structured JSON CloudEvent', async () => {
    const client = await open(h, 'live')
    expect(client.ws.protocol).toBe('cloudevents.json')
    await h.publish('live', 'd1', 'temperature', { celsius: 20 })
    const [event] = await client.receive(1)
    expect(event).toMatchObject({
      specversion: '1.0',
      tenant: 'live',
      device: 'd1',
      subject: 'temperature',
      datacontenttype: 'application/json',
      data: { celsius: 20 },
    })
    expect(typeof event?.['id']).toBe('string')
    client.ws.close()
    await client.closed
  })

  it('filters by channel (exact and MQTT-style), device and type', async () => {
    const byChannel = await open(h, 'filters', 'channel=alarm/%2B/fire&channel=status')
    const byDevice = await open(h, 'filters', 'device=d2,d3')
    const byType = await open(h, 'filters', 'type=nothing.of.that.kind')
    await h.publish('filters', 'd1', 'alarm/room-1/fire')
    await h.publish('filters', 'd2', 'alarm/room-1/smoke')
    await h.publish('filters', 'd3', 'status')
    await h.publish('filters', 'd1', 'other')
    // A marker that every socket passes but byType: once it arrives, the earlier ones were sorted.
    const channels = await byChannel.receive(2)
    expect(channels.map((e) => e['subject'])).toEqual(['alarm/room-1/fire', 'status'])
    expect(devices(await byDevice.receive(2))).toEqual(['d2', 'd3'])
    const all = await open(h, 'filters', 'from=earliest')
    await all.receive(4)
    expect(byType.events).toEqual([])
    expect(byChannel.events).toHaveLength(2)
    expect(byDevice.events).toHaveLength(2)
    for (const c of [byChannel, byDevice, byType, all]) c.ws.close()
  })

  it('replays from earliest, from a partition offset and from a time', async () => {
    await h.publish('replay', 'r1', 'c', { n: 1 })
    const second = await h.publish('replay', 'r1', 'c', { n: 2 })
    const between = Date.now()
    await waitUntil(() => Date.now() > between)
    await h.publish('replay', 'r1', 'c', { n: 3 })

    const earliest = await open(h, 'replay', 'from=earliest')
    expect((await earliest.receive(3)).map((e) => e['data'])).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }])

    const atOffset = await open(h, 'replay', `from=${second.partition}:${second.offset}`)
    expect((await atOffset.receive(2)).map((e) => e['data'])).toEqual([{ n: 2 }, { n: 3 }])

    const bare = await open(h, 'replay', `from=${second.offset}`)
    expect((await bare.receive(2)).map((e) => e['data'])).toEqual([{ n: 2 }, { n: 3 }])

    const atTime = await open(h, 'replay', `from=${new Date(between + 1).toISOString()}`)
    expect((await atTime.receive(1)).map((e) => e['data'])).toEqual([{ n: 3 }])

    // Later events still arrive on the replaying sockets.
    await h.publish('replay', 'r1', 'c', { n: 4 })
    expect((await atTime.receive(2))[1]?.['data']).toEqual({ n: 4 })
    expect(atTime.events).toHaveLength(2)
    for (const c of [earliest, atOffset, bare, atTime]) c.ws.close()
  })

  it('resumes a named group where it left off', async () => {
    const first = await open(h, 'resume', 'group=dashboard')
    await h.publish('resume', 'g1', 'c', { n: 1 })
    await h.publish('resume', 'g1', 'c', { n: 2 })
    await first.receive(2)
    first.ws.close()
    await first.closed
    await waitUntil(() => (h.server.events?.stats().byTenant.get('resume') ?? 0) === 0)

    await h.publish('resume', 'g1', 'c', { n: 3 })
    await h.publish('resume', 'g1', 'c', { n: 4 })
    const again = await open(h, 'resume', 'group=dashboard')
    expect((await again.receive(2)).map((e) => e['data'])).toEqual([{ n: 3 }, { n: 4 }])

    // Without the group, a new socket starts at the latest event and sees none of these.
    const ephemeral = await open(h, 'resume')
    await h.publish('resume', 'g1', 'c', { n: 5 })
    expect((await ephemeral.receive(1)).map((e) => e['data'])).toEqual([{ n: 5 }])
    expect((await again.receive(3))[2]?.['data']).toEqual({ n: 5 })
    again.ws.close()
    ephemeral.ws.close()
  })
})

describe('shutdown', () => {
  it('closes open sockets with 1001', async () => {
    const own = await startWsApi()
    await own.registry.createTenant('bye', {})
    const client = await open(own, 'bye')
    await own.close()
    expect((await client.closed).code).toBe(1001)
  })
})
