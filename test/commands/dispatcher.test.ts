// The dispatcher: order per device, gateways, offline sinks, `gone` and `failed` sinks, expiry
// sweeps, routes in the cluster state and messages from other instances.
import { afterEach, describe, expect, it } from 'vitest'
import { createDispatcher } from '../../commands/dispatcher.ts'
import type { Dispatcher } from '../../commands/dispatcher.ts'
import { PENDING_TOPIC } from '../../commands/dispatcher.ts'
import { createCommandMetrics } from '../../commands/metrics.ts'
import { createMemoryCluster } from '../../core/cluster/memory.ts'
import { silentLogger } from '../../core/log.ts'
import type { Device } from '../../core/registry/model.ts'
import { waitUntil } from '../helpers/wait.ts'
import { command, fakeQueue, recordingSink, recordingStatuses } from './fakes.ts'

const t0 = new Date('2026-06-01T12:00:01.000Z')

function setup(devices: Record<string, string[]> = {}) {
  let clock = t0.getTime()
  const queue = fakeQueue()
  const statuses = recordingStatuses()
  const cluster = createMemoryCluster({ log: silentLogger })
  const findDevice = async (_tenant: string, id: string) =>
    ({ id, gateways: devices[id] ?? [] }) as unknown as Device
  const dispatcher = createDispatcher({
    queue,
    cluster,
    findDevice,
    statuses,
    metrics: createCommandMetrics(undefined),
    log: silentLogger,
    leaseMs: 30_000,
    sweepMs: 10,
    now: () => new Date(clock),
  })
  return { queue, statuses, cluster, dispatcher, advance: (ms: number) => (clock += ms) }
}

let running: Dispatcher | undefined
afterEach(async () => {
  await running?.stop()
  running = undefined
})

describe('command dispatcher', () => {
  it('delivers what waited, in order, once a sink attaches, and records the route while attached', async () => {
    const { queue, statuses, cluster, dispatcher } = setup()
    const [a, b] = [command(), command({ name: 'second' })]
    await queue.enqueue(a)
    await queue.enqueue(b)
    const sink = recordingSink()
    const detach = dispatcher.attach('acme', 'd1', sink)
    await waitUntil(async () => (await dispatcher.idle(), sink.got.length === 2))
    expect(sink.got.map((c) => c.id)).toEqual([a.id, b.id])
    expect(statuses.of(a.id)).toEqual(['delivered'])
    expect(await queue.depth()).toBe(0)
    await waitUntil(async () => (await cluster.routes({ tenant: 'acme', device: 'd1' })).length === 1)
    detach()
    await waitUntil(async () => (await cluster.routes({ tenant: 'acme', device: 'd1' })).length === 0)
  })

  it('keeps a command queued when the sink is gone, and ends it failed when the sink says so', async () => {
    const { queue, statuses, dispatcher } = setup()
    const [a, b] = [command(), command()]
    await queue.enqueue(a)
    await queue.enqueue(b)
    const closing = recordingSink('http', [{ kind: 'gone' }])
    dispatcher.attach('acme', 'd1', closing)
    await dispatcher.idle()
    expect(closing.got.map((c) => c.id)).toEqual([a.id])
    expect(await queue.depth()).toBe(2)
    // Released, so the next sink gets both, the first refused for good.
    const next = recordingSink('coap', [{ kind: 'failed', reason: 'too-large' }])
    dispatcher.attach('acme', 'd1', next)
    await waitUntil(async () => (await dispatcher.idle(), next.got.length === 2))
    expect(statuses.of(a.id)).toEqual(['failed:too-large'])
    expect(statuses.of(b.id)).toEqual(['delivered'])
    expect(statuses.seen.find((s) => s.command.id === b.id)?.protocol).toBe('coap')
  })

  it('delivers through a gateway’s sink, saying which, and finds waiting commands when the gateway comes', async () => {
    const { queue, statuses, dispatcher } = setup({ d1: ['gw'] })
    const a = command()
    await queue.enqueue(a)
    const gateway = recordingSink()
    dispatcher.attach('acme', 'gw', gateway)
    await waitUntil(async () => (await dispatcher.idle(), gateway.got.length === 1))
    expect(gateway.got[0]!.device).toBe('d1')
    expect(statuses.seen.find((s) => s.command.id === a.id)).toMatchObject({ status: 'delivered', via: 'gw' })
  })

  it('asks offline sinks only for a device without a sink here', async () => {
    const { queue, dispatcher } = setup()
    const offline = recordingSink('ttn')
    dispatcher.offline(async (_t, device) => (device === 'lora' ? offline : undefined))
    expect(await dispatcher.reachable('acme', 'lora')).toBe(true)
    expect(await dispatcher.reachable('acme', 'd1')).toBe(false)
    await queue.enqueue(command({ device: 'lora' }))
    dispatcher.pending('acme', 'lora')
    await waitUntil(async () => (await dispatcher.idle(), offline.got.length === 1))
  })

  it('expires what waited past its ttl, with a status event, and never delivers it', async () => {
    const { queue, statuses, dispatcher, advance } = setup()
    running = dispatcher
    await dispatcher.start()
    const a = command({ expiresAt: new Date(t0.getTime() + 1_000) })
    await queue.enqueue(a)
    advance(2_000)
    await waitUntil(() => statuses.of(a.id).length === 1)
    expect(statuses.of(a.id)).toEqual(['expired:ttl'])
    const sink = recordingSink()
    dispatcher.attach('acme', 'd1', sink)
    await dispatcher.idle()
    expect(sink.got).toEqual([])
  })

  it('delivers when another instance says a device it holds has commands', async () => {
    const { queue, cluster, dispatcher } = setup()
    running = dispatcher
    await dispatcher.start()
    const sink = recordingSink()
    dispatcher.attach('acme', 'd1', sink)
    await dispatcher.idle()
    await queue.enqueue(command())
    await cluster.send(cluster.instance, PENDING_TOPIC, JSON.stringify({ tenant: 'acme', device: 'd1' }))
    await waitUntil(async () => (await dispatcher.idle(), sink.got.length === 1))
  })
})
