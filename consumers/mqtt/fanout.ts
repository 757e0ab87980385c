// One bus reader per tenant that has subscribers on this process, shared by all of them: it starts
// at the tenant topic's end ('latest') when the tenant's first client subscribes, hands each event
// to `deliver`, and leaves when the tenant's last client is gone. At most `maxInFlight` events of a
// tenant are on their way to its clients; past that the reader waits (the clients' queues are
// bounded by the broker, which drops the slow ones).
import type { BusMessage, EventBus, SubscribeOptions, Subscription } from '../../core/bus/bus.ts'
import type { Logger } from '../../core/log.ts'

export interface FanoutDeps {
  readonly bus: Pick<EventBus, 'subscribe'>
  /** Creates the tenant's event topic unless it exists (a tenant that never had an event has none). */
  readonly ensureTopic?: ((tenant: string) => Promise<void>) | undefined
  /** The tenant's event topic. */
  readonly topic: (tenant: string) => string
  /** The tenant reader's consumer group: one per process and tenant. */
  readonly group: (tenant: string) => string
  /** Hands one event record to the broker; `done` is called once every client took it or left. */
  readonly deliver: (tenant: string, message: BusMessage, done: () => void) => void
  readonly maxInFlight: number
  readonly log: Logger
}

interface Reader {
  users: number
  closed: boolean
  readonly ready: Promise<Subscription>
  inFlight: number
  readonly waiting: Array<() => void>
}

export function createFanout(deps: FanoutDeps) {
  const readers = new Map<string, Reader>()
  const closing = new Set<Promise<void>>()

  async function subscribe(tenant: string, options: SubscribeOptions): Promise<Subscription> {
    await deps.ensureTopic?.(tenant)
    return deps.bus.subscribe(options)
  }

  function open(tenant: string): Reader {
    const reader: Reader = {
      users: 0,
      closed: false,
      inFlight: 0,
      waiting: [],
      ready: subscribe(tenant, {
        group: deps.group(tenant),
        topics: [deps.topic(tenant)],
        from: 'latest',
        // Every reader starts at the end: it serves whoever is connected now, never a backlog, and
        // keeps its place in memory only (no offsets left behind for its throwaway group).
        reset: true,
        commit: false,
        handler: async (batch) => {
          for (const message of batch) {
            while (!reader.closed && reader.inFlight >= deps.maxInFlight)
              await new Promise<void>((resolve) => reader.waiting.push(resolve))
            reader.inFlight++
            deps.deliver(tenant, message, () => {
              reader.inFlight--
              reader.waiting.shift()?.()
            })
          }
        },
        onError: (err) => deps.log.warn({ err, tenant }, 'delivering events to MQTT applications failed'),
      }),
    }
    return reader
  }

  function close(tenant: string, reader: Reader): void {
    readers.delete(tenant)
    reader.closed = true
    for (const resolve of reader.waiting.splice(0)) resolve()
    const done = reader.ready
      .then((subscription) => subscription.close())
      .catch((err: unknown) => deps.log.warn({ err, tenant }, 'closing a tenant event reader failed'))
      .finally(() => closing.delete(done))
    closing.add(done)
  }

  return {
    /** Resolves once the tenant's reader holds its partitions: events published from now on arrive. */
    async acquire(tenant: string): Promise<void> {
      let reader = readers.get(tenant)
      if (reader === undefined) {
        reader = open(tenant)
        readers.set(tenant, reader)
      }
      reader.users++
      try {
        await reader.ready
      } catch (err) {
        reader.users--
        if (readers.get(tenant) === reader) readers.delete(tenant)
        throw err
      }
    },

    /** The counterpart of a successful acquire(). */
    release(tenant: string): void {
      const reader = readers.get(tenant)
      if (reader === undefined) return
      reader.users--
      if (reader.users <= 0) close(tenant, reader)
    },

    /** Tenants with a reader now. */
    tenants: (): string[] => [...readers.keys()],

    async closeAll(): Promise<void> {
      for (const [tenant, reader] of [...readers]) close(tenant, reader)
      await Promise.allSettled([...closing])
    },
  }
}

export type Fanout = ReturnType<typeof createFanout>
