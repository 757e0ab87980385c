// The dispatcher: delivers a device's queued commands, in order, through the sinks the adapters of
// this instance attached for it (or for one of its gateways), or through an offline sink (TTN).
// One drain per device runs at a time here, and the queue's leased claims keep instances apart.
// It also expires what waited too long: every command ends in a status event.
import type { ClusterState } from '../core/cluster/cluster.ts'
import { isTributaryError } from '../core/errors.ts'
import type { Command, StatusInput } from '../core/events/commands.ts'
import type { Component } from '../core/lifecycle.ts'
import type { Logger } from '../core/log.ts'
import type { CommandQueue, QueuedCommand } from '../core/registry/command-queue.ts'
import type { Device } from '../core/registry/model.ts'
import type { CommandMetrics } from './metrics.ts'
import type { CommandOutlet, CommandSink, DeliveryResult, DeviceCommand, DeviceResponse } from './outlet.ts'
import type { StatusWriter } from './status.ts'
import { notifyWaiter } from './waiters.ts'

/** Another instance asks this one to deliver a device's commands (it holds a route to it). */
export const PENDING_TOPIC = 'command-pending'

export interface DispatcherDeps {
  readonly queue: CommandQueue
  readonly cluster: Pick<
    ClusterState,
    'instance' | 'addRoute' | 'removeRoute' | 'onMessage' | 'send' | 'getValue'
  >
  readonly findDevice: (tenant: string, device: string) => Promise<Device | undefined>
  readonly statuses: StatusWriter
  readonly metrics: CommandMetrics
  readonly log: Logger
  readonly leaseMs: number
  /** How often expired commands are looked for (default 1 s). */
  readonly sweepMs?: number | undefined
  readonly now?: (() => Date) | undefined
}

export interface Dispatcher extends CommandOutlet, Component {
  /** Delivers the device's waiting commands if a sink can take them here; never throws. */
  kick(tenant: string, device: string): void
  /** Whether a command for the device could be delivered here now (a sink, or an offline sink). */
  reachable(tenant: string, device: string): Promise<boolean>
  /** Resolves when every drain running now has finished (tests, shutdown). */
  idle(): Promise<void>
}

const CLAIM_BATCH = 20
const EXPIRY_BATCH = 100

const keyOf = (tenant: string, device: string): string => `${tenant}/${device}`

interface Reach {
  readonly sink: CommandSink
  /** The gateway whose sink it is, when not the device's own. */
  readonly via?: string | undefined
}

export function toDeviceCommand(c: Command): DeviceCommand {
  return {
    id: c.id,
    tenant: c.tenant,
    device: c.device,
    name: c.name,
    payload: c.payload,
    contentType: c.contentType,
    requestId: c.requestId,
    fport: c.fport,
    downlink: c.downlink,
    expiresAt: c.expiresAt,
    traceparent: c.traceparent,
  }
}

export function createDispatcher(deps: DispatcherDeps): Dispatcher {
  const { queue, cluster, statuses, metrics, log } = deps
  const now = deps.now ?? (() => new Date())
  const holder = cluster.instance
  const sinks = new Map<string, CommandSink[]>()
  const providers = new Set<(tenant: string, device: string) => Promise<CommandSink | undefined>>()
  /** Devices being drained, and whether another drain was asked for meanwhile. */
  const draining = new Map<string, { again: boolean; done: Promise<void> }>()
  let sweeper: NodeJS.Timeout | undefined
  let sweeping: Promise<void> | undefined
  let stopped = false
  const offs: Array<() => void> = []

  /** Local sinks for the device, newest first, then those of its gateways, then an offline one. */
  async function reach(tenant: string, device: string, skip: ReadonlySet<CommandSink>): Promise<Reach[]> {
    const found: Reach[] = []
    for (const sink of [...(sinks.get(keyOf(tenant, device)) ?? [])].reverse())
      if (!skip.has(sink)) found.push({ sink })
    const gateways = (await deps.findDevice(tenant, device))?.gateways ?? []
    for (const gateway of gateways) {
      for (const sink of [...(sinks.get(keyOf(tenant, gateway)) ?? [])].reverse())
        if (!skip.has(sink)) found.push({ sink, via: gateway })
    }
    if (found.length === 0) {
      for (const provider of providers) {
        const sink = await provider(tenant, device)
        if (sink !== undefined && !skip.has(sink)) found.push({ sink })
      }
    }
    return found
  }

  async function deliverOne(command: QueuedCommand, target: Reach): Promise<DeliveryResult> {
    try {
      return await target.sink.deliver(toDeviceCommand(command))
    } catch (err) {
      log.warn(
        { err, tenant: command.tenant, device: command.device, command: command.id },
        'command sink failed',
      )
      return { kind: 'gone' }
    }
  }

  async function drain(tenant: string, device: string): Promise<void> {
    // Sinks that said `gone` in this drain are not asked again (a one-shot sink, a closing connection).
    const used = new Set<CommandSink>()
    for (;;) {
      if (stopped) return
      let targets = await reach(tenant, device, used)
      if (targets.length === 0) return
      const claimed = await queue.claim(tenant, device, holder, now(), deps.leaseMs, CLAIM_BATCH)
      if (claimed.length === 0) return
      // Ended commands are removed and reported once per batch (a crash in between delivers them
      // again after the lease: at least once until here).
      const ended: StatusInput[] = []
      const finish = async (): Promise<void> => {
        if (ended.length === 0) return
        await queue.complete(ended.map((e) => e.command.id))
        await statuses.record(...ended.splice(0))
      }
      for (let i = 0; i < claimed.length; i++) {
        const command = claimed[i]!
        let result: DeliveryResult = { kind: 'gone' }
        let target: Reach | undefined
        while (targets.length > 0) {
          target = targets[0]!
          result = await deliverOne(command, target)
          if (result.kind !== 'gone') break
          used.add(target.sink)
          targets = targets.slice(1)
          if (targets.length === 0) targets = await reach(tenant, device, used)
        }
        if (result.kind === 'gone' || target === undefined) {
          await finish()
          await queue.release(
            holder,
            claimed.slice(i).map((c) => c.id),
          )
          return
        }
        const protocol = target.sink.protocol
        if (result.kind === 'delivered') {
          metrics.delivered(Math.max(0, now().getTime() - command.time.getTime()) / 1000)
          ended.push({ command, status: 'delivered', protocol, via: target.via })
        } else {
          ended.push({ command, status: 'failed', reason: result.reason, protocol, via: target.via })
        }
      }
      await finish()
      if (claimed.length < CLAIM_BATCH) {
        // Loop once more only if more may wait (a full batch); a new command kicks again anyway.
        return
      }
    }
  }

  function kick(tenant: string, device: string): void {
    if (stopped) return
    const key = keyOf(tenant, device)
    const running = draining.get(key)
    if (running !== undefined) {
      running.again = true
      return
    }
    const state = { again: false, done: Promise.resolve() }
    state.done = (async () => {
      try {
        do {
          state.again = false
          await drain(tenant, device)
        } while (state.again && !stopped)
      } catch (err) {
        const level = isTributaryError(err) && err.canRetry ? 'warn' : 'error'
        log[level]({ err, tenant, device }, 'delivering commands failed; they stay queued')
      } finally {
        draining.delete(key)
      }
    })()
    draining.set(key, state)
  }

  /** A gateway came: deliver what waits for the devices it serves. */
  async function kickServed(tenant: string, gateway: string): Promise<void> {
    for (const device of await queue.pendingDevices(tenant, 1000)) {
      if (device === gateway) continue
      const found = await deps.findDevice(tenant, device)
      if (found?.gateways.includes(gateway) === true) kick(tenant, device)
    }
  }

  async function sweep(): Promise<void> {
    for (;;) {
      const expired = await queue.claimExpired(holder, now(), deps.leaseMs, EXPIRY_BATCH)
      if (expired.length > 0) {
        await queue.complete(expired.map((c) => c.id))
        await statuses.record(
          ...expired.map((command): StatusInput => ({
            command,
            status: 'expired',
            reason: 'ttl',
            protocol: command.origin,
          })),
        )
      }
      if (expired.length < EXPIRY_BATCH || stopped) return
    }
  }

  function countAttached(): void {
    metrics.attached(sinks.size)
  }

  return {
    name: 'command-dispatcher',

    attach(tenant, device, sink) {
      const key = keyOf(tenant, device)
      const list = sinks.get(key) ?? []
      list.push(sink)
      sinks.set(key, list)
      countAttached()
      const routed =
        list.length === 1
          ? cluster.addRoute({ tenant, device }).catch((err: unknown) => {
              log.warn({ err, tenant, device }, 'could not record the command route')
            })
          : Promise.resolve()
      kick(tenant, device)
      void kickServed(tenant, device).catch((err: unknown) =>
        log.warn({ err, tenant, gateway: device }, 'could not look for commands a gateway serves'),
      )
      let attached = true
      return () => {
        if (!attached) return
        attached = false
        const current = sinks.get(key)
        if (current === undefined) return
        const left = current.filter((s) => s !== sink)
        if (left.length > 0) return void sinks.set(key, left)
        sinks.delete(key)
        countAttached()
        void routed
          .then(() => (sinks.has(key) ? undefined : cluster.removeRoute({ tenant, device })))
          .catch((err: unknown) => log.warn({ err, tenant, device }, 'could not remove the command route'))
      }
    },

    offline(provider) {
      providers.add(provider)
      return () => {
        providers.delete(provider)
      }
    },

    pending(tenant, device) {
      kick(tenant, device)
    },

    responded(response: DeviceResponse) {
      const { tenant, device, requestId, status, payload, contentType } = response
      void notifyWaiter(cluster, tenant, requestId, {
        kind: 'response',
        tenant,
        device,
        status,
        payload,
        contentType,
      }).catch((err: unknown) => log.debug({ err, tenant, device }, 'could not tell a waiting request'))
    },

    kick,

    async reachable(tenant, device) {
      return (await reach(tenant, device, new Set())).length > 0
    },

    async idle() {
      while (draining.size > 0) await Promise.allSettled([...draining.values()].map((d) => d.done))
    },

    async start() {
      offs.push(
        cluster.onMessage(PENDING_TOPIC, (body) => {
          try {
            const { tenant, device } = JSON.parse(body) as { tenant?: unknown; device?: unknown }
            if (typeof tenant === 'string' && typeof device === 'string') kick(tenant, device)
          } catch {
            log.warn('ignoring a malformed command-pending message')
          }
        }),
      )
      const every = deps.sweepMs ?? 1_000
      sweeper = setInterval(() => {
        if (sweeping !== undefined) return
        sweeping = sweep()
          .catch((err: unknown) => log.warn({ err }, 'expiring commands failed; will retry'))
          .finally(() => (sweeping = undefined))
      }, every)
      sweeper.unref()
    },

    async stop() {
      stopped = true
      clearInterval(sweeper)
      for (const off of offs.splice(0)) off()
      await sweeping
      while (draining.size > 0) await Promise.allSettled([...draining.values()].map((d) => d.done))
      // Routes go with the cluster state's stop (it removes what this instance holds).
      sinks.clear()
    },
  }
}
