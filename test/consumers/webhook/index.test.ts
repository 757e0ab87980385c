// The webhook delivery component: which subscriptions run, how registry changes move them, that
// a stuck endpoint leaves other subscriptions alone, re-drive requests (changes and the sweep),
// and a clean stop.
import { describe, expect, it } from 'vitest'
import type { WebhookDeliveryDeps } from '../../../consumers/webhook/index.ts'
import { createWebhookDelivery } from '../../../consumers/webhook/index.ts'
import { noMetrics } from '../../../consumers/webhook/metrics.ts'
import type { SendOutcome } from '../../../consumers/webhook/ports.ts'
import type { WebhookSubscription } from '../../../core/registry/model.ts'
import { topicNames } from '../../../core/events/topics.ts'
import { silentLogger } from '../../../core/log.ts'
import { waitUntil } from '../../helpers/wait.ts'
import {
  fakeBus,
  fakeClock,
  fakeDeadLetters,
  fakeRecords,
  fakeRedrive,
  fakeSender,
  fakeSource,
  letterOf,
  message,
  subscription,
  telemetry,
} from './fakes.ts'

const ID = (n: number): string => `0190a000-0000-7000-8000-00000000000${n}`

function setup(subscriptions: WebhookSubscription[]) {
  const bus = fakeBus()
  const sender = fakeSender()
  const source = fakeSource(subscriptions)
  const deps: WebhookDeliveryDeps = {
    bus,
    topics: topicNames('tributary'),
    source,
    sender,
    deadLetters: fakeDeadLetters(),
    clock: fakeClock(),
    metrics: noMetrics,
    log: silentLogger,
    shutdownGraceMs: 10,
  }
  return { bus, sender, source, deps, delivery: createWebhookDelivery(deps) }
}

describe('webhook delivery component', () => {
  it('runs every subscription that is not disabled, paused ones paused', async () => {
    const { bus, delivery } = setup([
      subscription({ id: ID(1) }),
      subscription({ id: ID(2), state: 'paused' }),
      subscription({ id: ID(3), state: 'disabled' }),
      subscription({ tenant: 'globex', id: ID(4) }),
    ])
    await delivery.start()
    expect(delivery.running().sort()).toEqual([`acme/${ID(1)}`, `acme/${ID(2)}`, `globex/${ID(4)}`])
    expect(bus.options.map((o) => o.topics[0])).toEqual([
      'tributary.events.acme',
      'tributary.events.acme',
      'tributary.events.globex',
    ])
    expect(bus.paused).toBe(true)
    await delivery.stop()
    expect(delivery.running()).toEqual([])
    expect(bus.closed).toBe(3)
  })

  it('ensures each tenant topic before a subscription joins it, and names a subscription that cannot start', async () => {
    const { bus, deps } = setup([subscription({ id: ID(1) }), subscription({ tenant: 'globex', id: ID(2) })])
    const ensured: string[] = []
    const withTopics = createWebhookDelivery({
      ...deps,
      ensureTopic: async (tenant) => {
        // A topic that could not be created fails the start with the subscription named.
        if (tenant === 'globex') throw new Error('not allowed to create topics')
        ensured.push(tenant)
        expect(bus.options).toHaveLength(0)
      },
    })
    await expect(withTopics.start()).rejects.toThrow(
      `webhook subscription ${ID(2)} of tenant globex: not allowed to create topics`,
    )
    expect(ensured).toEqual(['acme'])
    expect(bus.options.map((o) => o.topics[0])).toEqual(['tributary.events.acme'])
    await withTopics.stop()
  })

  it('follows subscription changes: created, paused, resumed, updated, disabled and deleted', async () => {
    const { bus, source, sender, delivery } = setup([])
    await delivery.start()
    const key = `acme/${ID(1)}`
    const put = (s: WebhookSubscription): void => void source.subscriptions.set(key, s)
    const change = (op: 'created' | 'updated' | 'deleted') =>
      delivery.onChange({ op, resource: 'subscription', tenant: 'acme', id: ID(1) })

    put(subscription({ id: ID(1) }))
    await change('created')
    expect(delivery.running()).toEqual([key])
    expect(bus.options).toHaveLength(1)

    put(subscription({ id: ID(1), state: 'paused', version: 2 }))
    await change('updated')
    expect(bus.paused).toBe(true)
    put(subscription({ id: ID(1), state: 'active', version: 3 }))
    await change('updated')
    expect(bus.paused).toBe(false)
    expect(bus.options).toHaveLength(1)

    // A new URL needs a new runner; it continues from the group's committed offsets.
    put(subscription({ id: ID(1), url: 'https://other.example.com/', version: 4 }))
    await change('updated')
    expect(bus.closed).toBe(1)
    expect(bus.options).toHaveLength(2)
    expect(bus.options[1]?.group).toBe(bus.options[0]?.group)
    expect(await bus.run([message(telemetry('d1'))])).toBe(true)
    expect(sender.requests[0]?.url).toBe('https://other.example.com/')

    put(subscription({ id: ID(1), state: 'disabled', version: 5 }))
    await change('updated')
    expect(delivery.running()).toEqual([])
    expect(bus.closed).toBe(2)

    put(subscription({ id: ID(1), version: 6 }))
    await change('updated')
    expect(delivery.running()).toEqual([key])
    await change('deleted')
    expect(delivery.running()).toEqual([])
    await delivery.stop()
  })

  it('restarts a subscription in a new group at the replay time when a replay is requested', async () => {
    const created = subscription({ id: ID(1) })
    const { bus, source, sender, delivery } = setup([created])
    await delivery.start()
    const key = `acme/${ID(1)}`
    const put = (s: WebhookSubscription): void => void source.subscriptions.set(key, s)
    const updated = () =>
      delivery.onChange({ op: 'updated', resource: 'subscription', tenant: 'acme', id: ID(1) })
    const from = '2026-02-01T00:00:00.000Z'

    put({ ...created, replayFrom: from, replayGeneration: 1, version: 2 })
    await updated()
    expect(bus.closed).toBe(1)
    expect(bus.options).toHaveLength(2)
    expect(bus.options[1]).toMatchObject({
      group: `tributary-webhook-${ID(1)}-replay-1`,
      from: { time: Date.parse(from) },
    })
    const replayed = telemetry('d1')
    expect(await bus.run([message(replayed)])).toBe(true)
    expect(sender.requests.map((r) => r.headers['webhook-id'])).toEqual([replayed.attributes.id])

    // Pausing keeps the replay's runner; a second replay starts a group of its own.
    put({ ...created, replayFrom: from, replayGeneration: 1, state: 'paused', version: 3 })
    await updated()
    expect(bus.options).toHaveLength(2)
    put({ ...created, replayFrom: '2026-02-02T00:00:00.000Z', replayGeneration: 2, version: 4 })
    await updated()
    expect(bus.options).toHaveLength(3)
    expect(bus.options[2]).toMatchObject({
      group: `tributary-webhook-${ID(1)}-replay-2`,
      from: { time: Date.parse('2026-02-02T00:00:00.000Z') },
    })
    expect(delivery.running()).toEqual([key])
    await delivery.stop()
  })

  it('stops the subscriptions of a deleted tenant and only those', async () => {
    const { delivery } = setup([
      subscription({ id: ID(1) }),
      subscription({ id: ID(2) }),
      subscription({ tenant: 'globex', id: ID(3) }),
    ])
    await delivery.start()
    await delivery.onChange({ op: 'deleted', resource: 'tenant', tenant: 'acme' })
    expect(delivery.running()).toEqual([`globex/${ID(3)}`])
    await delivery.onChange({ op: 'updated', resource: 'device', tenant: 'globex' })
    expect(delivery.running()).toEqual([`globex/${ID(3)}`])
    await delivery.stop()
  })

  it('drops a subscription disabled by a 410 from the running set', async () => {
    const { bus, sender, delivery } = setup([subscription({ id: ID(1) })])
    await delivery.start()
    sender.script.push({ kind: 'gone', status: 410 })
    expect(await bus.run([message(telemetry('d1'))])).toBe(false)
    expect(delivery.running()).toEqual([])
    await delivery.stop()
  })

  it('keeps delivering for one subscription while another endpoint hangs', async () => {
    const { bus, sender, delivery } = setup([
      subscription({ id: ID(1), url: 'https://stuck.example.com/' }),
      subscription({ id: ID(2), url: 'https://fine.example.com/' }),
    ])
    await delivery.start()
    // Answers only when aborted.
    sender.script.push(
      (signal) =>
        new Promise<SendOutcome>((resolve) =>
          signal.addEventListener('abort', () => resolve({ kind: 'retry', error: 'aborted' }), {
            once: true,
          }),
        ),
    )
    const stuck = bus.run([message(telemetry('d1'))], 0)
    const delivered = await bus.run([message(telemetry('d1')), message(telemetry('d2'))], 1)
    expect(delivered).toBe(true)
    expect(sender.requests.map((r) => r.url)).toEqual([
      'https://stuck.example.com/',
      'https://fine.example.com/',
      'https://fine.example.com/',
    ])
    expect(delivery.recentErrors('acme', ID(1))).toEqual([])
    // Shutdown aborts the hung request after the grace period and commits nothing of its batch.
    await delivery.stop()
    expect(await stuck).toBe(false)
  })
})

describe('webhook delivery component: re-drive', () => {
  function withRedrive(subscriptions: WebhookSubscription[]) {
    const redrive = fakeRedrive()
    const records = fakeRecords()
    const sender = fakeSender()
    const source = fakeSource(subscriptions)
    const delivery = createWebhookDelivery({
      bus: fakeBus(),
      topics: topicNames('tributary'),
      source,
      sender,
      deadLetters: fakeDeadLetters(),
      clock: fakeClock(),
      metrics: noMetrics,
      log: silentLogger,
      shutdownGraceMs: 10,
      redrive: { port: redrive, records, log: silentLogger },
    })
    const ask = (sub: WebhookSubscription, offset: number): void => {
      const { claim, record } = letterOf(telemetry('d1'), offset, sub)
      redrive.requested.push(claim)
      records.records.set(`0:${offset}`, record)
    }
    return { redrive, sender, source, delivery, ask }
  }

  it('re-drives on a change of the subscription (how a request reaches every engine)', async () => {
    const sub = subscription({ id: ID(1) })
    const { redrive, delivery, ask } = withRedrive([sub])
    await delivery.start()
    ask(sub, 7)
    await delivery.onChange({ op: 'updated', resource: 'subscription', tenant: 'acme', id: ID(1) })
    await waitUntil(() => redrive.finished.length === 1)
    expect(redrive.finished).toEqual([{ offset: 7, outcome: 'delivered' }])
    await delivery.stop()
  })

  it('kicks the runners of pending subscriptions on a sweep, and only those running here', async () => {
    const a = subscription({ id: ID(1) })
    const b = subscription({ id: ID(2), state: 'disabled' })
    const { redrive, sender, delivery, ask } = withRedrive([a, b])
    await delivery.start()
    await waitUntil(() => redrive.claims.length === 1)
    ask(a, 1)
    ask(b, 2)
    await delivery.sweepRedrives()
    await waitUntil(() => redrive.finished.length === 1)
    expect(redrive.finished).toEqual([{ offset: 1, outcome: 'delivered' }])
    expect(sender.requests).toHaveLength(1)
    expect(redrive.requested.map((c) => c.offset)).toEqual([2])
    expect(delivery.subscriptions().map((s) => s.id)).toEqual([ID(1)])
    await delivery.stop()
  })
})
