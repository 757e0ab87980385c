// A CommandOutlet double for adapter tests (a fake at the port): commands sent to it wait per device
// until a sink is attached, and are then delivered one at a time in order, as the dispatcher does;
// `gone` keeps a command queued for the next sink, `delivered` and `failed` end it. What the sinks
// answered and what devices responded is recorded.
import type {
  CommandOutlet,
  CommandSink,
  DeliveryResult,
  DeviceCommand,
  DeviceResponse,
} from '../../../commands/outlet.ts'

export interface FakeOutlet extends CommandOutlet {
  /** Queues a command for `command.tenant`/`target` (default: command.device) and delivers it if it can. */
  send(command: DeviceCommand, target?: string): void
  /** Every delivery attempt and its result, in order. */
  readonly results: Array<{ readonly id: string; readonly result: DeliveryResult }>
  readonly responses: DeviceResponse[]
  /** Sinks attached now for the device. */
  attached(tenant: string, device: string): number
  /** Resolves once `count` (default 1) sinks are attached for the device (at once when they are). */
  whenAttached(tenant: string, device: string, count?: number): Promise<void>
  /** Resolves once `count` delivery attempts have been made. */
  whenResults(count: number): Promise<void>
  /** Commands still queued for the device. */
  queued(tenant: string, device: string): DeviceCommand[]
}

let sequence = 0

/** A command with defaults for the fields a test does not care about. */
export function command(
  fields: Partial<DeviceCommand> & Pick<DeviceCommand, 'tenant' | 'device'>,
): DeviceCommand {
  sequence++
  return {
    id: `cmd-${sequence}`,
    name: 'reboot',
    payload: Buffer.from(`{"n":${sequence}}`),
    contentType: 'application/json',
    requestId: undefined,
    fport: undefined,
    downlink: undefined,
    expiresAt: new Date(Date.now() + 60_000),
    ...fields,
  }
}

export function createFakeOutlet(): FakeOutlet {
  const sinks = new Map<string, CommandSink[]>()
  const queues = new Map<string, DeviceCommand[]>()
  const busy = new Set<string>()
  const results: Array<{ id: string; result: DeliveryResult }> = []
  const responses: DeviceResponse[] = []
  const watchers = new Set<() => void>()
  const changed = (): void => {
    for (const w of [...watchers]) w()
  }
  const until = (done: () => boolean): Promise<void> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (!done()) return
        watchers.delete(check)
        resolve()
      }
      watchers.add(check)
      check()
    })

  async function pump(key: string): Promise<void> {
    if (busy.has(key)) return
    busy.add(key)
    try {
      for (;;) {
        const queue = queues.get(key) ?? []
        const sink = sinks.get(key)?.[0]
        const next = queue[0]
        if (sink === undefined || next === undefined) return
        const result = await sink.deliver(next)
        results.push({ id: next.id, result })
        if (result.kind !== 'gone') queue.shift()
        else {
          // A sink that cannot take it now is passed over until it is attached again.
          const list = sinks.get(key) ?? []
          sinks.set(
            key,
            list.filter((s) => s !== sink),
          )
        }
        changed()
      }
    } finally {
      busy.delete(key)
    }
  }

  return {
    results,
    responses,
    attach(tenant, device, sink) {
      const key = `${tenant}/${device}`
      sinks.set(key, [...(sinks.get(key) ?? []), sink])
      changed()
      void pump(key)
      return () => {
        sinks.set(
          key,
          (sinks.get(key) ?? []).filter((s) => s !== sink),
        )
        changed()
      }
    },
    offline: () => () => undefined,
    pending: () => undefined,
    responded(response) {
      responses.push(response)
      changed()
    },
    send(cmd, target) {
      const key = `${cmd.tenant}/${target ?? cmd.device}`
      const queue = queues.get(key) ?? []
      queue.push(cmd)
      queues.set(key, queue)
      void pump(key)
    },
    attached: (tenant, device) => sinks.get(`${tenant}/${device}`)?.length ?? 0,
    whenAttached: (tenant, device, count = 1) =>
      until(() => (sinks.get(`${tenant}/${device}`)?.length ?? 0) >= count),
    whenResults: (count) => until(() => results.length >= count),
    queued: (tenant, device) => [...(queues.get(`${tenant}/${device}`) ?? [])],
  }
}
