// The per-tenant bus readers against a fake bus (the port): one reader per tenant however many
// clients share it, started at 'latest' ignoring committed offsets, closed with its last client,
// and at most maxInFlight events of a tenant on their way at once.
import { expect, it } from 'vitest'
import type { BusMessage, SubscribeOptions, Subscription } from '../../../core/bus/bus.ts'
import { createLogger } from '../../../core/log.ts'
import { createFanout } from '../../../consumers/mqtt/fanout.ts'

interface FakeReader {
  readonly options: SubscribeOptions
  closed: boolean
}

function fakeBus() {
  const readers: FakeReader[] = []
  return {
    readers,
    subscribe(options: SubscribeOptions): Promise<Subscription> {
      const reader: FakeReader = { options, closed: false }
      readers.push(reader)
      return Promise.resolve({
        pause: () => undefined,
        resume: () => undefined,
        paused: false,
        seek: () => Promise.resolve(),
        assignments: () => [],
        close: () => {
          reader.closed = true
          return Promise.resolve()
        },
      })
    },
  }
}

const message = (offset: number): BusMessage => ({
  topic: 't',
  partition: 0,
  offset,
  timestamp: 0,
  key: undefined,
  value: undefined,
  headers: new Map(),
})

function setup(maxInFlight = 10) {
  const bus = fakeBus()
  const delivered: Array<{ tenant: string; offset: number; done: () => void }> = []
  const fanout = createFanout({
    bus,
    topic: (tenant) => `tributary.events.${tenant}`,
    group: (tenant) => `tributary-app-mqtt-test-${tenant}`,
    deliver: (tenant, m, done) => delivered.push({ tenant, offset: m.offset, done }),
    maxInFlight,
    log: createLogger({ level: 'silent' }),
  })
  return { bus, delivered, fanout }
}

it('shares one reader per tenant, from the end of the topic, and closes it with its last user', async () => {
  const { bus, fanout } = setup()
  await fanout.acquire('acme')
  await fanout.acquire('acme')
  await fanout.acquire('other')
  expect(bus.readers.map((r) => r.options.topics)).toEqual([
    ['tributary.events.acme'],
    ['tributary.events.other'],
  ])
  expect(bus.readers[0]!.options).toMatchObject({
    group: 'tributary-app-mqtt-test-acme',
    from: 'latest',
    reset: true,
  })
  fanout.release('acme')
  expect(bus.readers[0]!.closed).toBe(false)
  fanout.release('acme')
  await fanout.closeAll() // waits for the closing reader
  expect(bus.readers[0]!.closed).toBe(true)
  expect(bus.readers[1]!.closed).toBe(true)
  expect(fanout.tenants()).toEqual([])
})

it('opens a new reader when a tenant comes back after its last user left', async () => {
  const { bus, fanout } = setup()
  await fanout.acquire('acme')
  fanout.release('acme')
  await fanout.acquire('acme')
  expect(bus.readers).toHaveLength(2)
  expect(bus.readers[0]!.closed).toBe(true)
  expect(fanout.tenants()).toEqual(['acme'])
  await fanout.closeAll()
})

it('hands events over in order and waits while maxInFlight of them are undelivered', async () => {
  const { bus, delivered, fanout } = setup(2)
  await fanout.acquire('acme')
  const handled = bus.readers[0]!.options.handler([message(1), message(2), message(3), message(4)])
  let finished = false
  void handled.then(() => (finished = true))
  await new Promise((resolve) => setImmediate(resolve))
  expect(delivered.map((d) => d.offset)).toEqual([1, 2])
  delivered[0]!.done()
  await new Promise((resolve) => setImmediate(resolve))
  expect(delivered.map((d) => d.offset)).toEqual([1, 2, 3])
  expect(finished).toBe(false)
  delivered[1]!.done()
  await handled
  expect(delivered.map((d) => [d.tenant, d.offset])).toEqual([
    ['acme', 1],
    ['acme', 2],
    ['acme', 3],
    ['acme', 4],
  ])
  await fanout.closeAll()
})

it('lets a waiting handler go when the reader closes', async () => {
  const { bus, delivered, fanout } = setup(1)
  await fanout.acquire('acme')
  const handled = bus.readers[0]!.options.handler([message(1), message(2)])
  await new Promise((resolve) => setImmediate(resolve))
  expect(delivered).toHaveLength(1)
  await fanout.closeAll()
  await handled
  expect(delivered.map((d) => d.offset)).toEqual([1, 2])
})

it('fails acquire when the reader cannot start, and tries again on the next one', async () => {
  const { bus, fanout } = setup()
  let fail = true
  const subscribe = bus.subscribe.bind(bus)
  bus.subscribe = (options) => (fail ? Promise.reject(new Error('bus down')) : subscribe(options))
  await expect(fanout.acquire('acme')).rejects.toThrow('bus down')
  expect(fanout.tenants()).toEqual([])
  fail = false
  await fanout.acquire('acme')
  expect(fanout.tenants()).toEqual(['acme'])
  await fanout.closeAll()
})
