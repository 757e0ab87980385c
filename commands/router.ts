// The command router: consumes the commands topic in the `<prefix>-commands` group, checks each
// command against the registry, queues it durably for its device, writes the `accepted` status,
// and tells the instances holding a route to the device (or to one of its gateways) — found in the
// cluster state — to deliver it. A record is committed only after all of that, so a crash
// re-routes it (the queue keeps a command id once).
import type { BusMessage, EventBus, OutgoingRecord, Subscription } from '../core/bus/bus.ts'
import type { ClusterState } from '../core/cluster/cluster.ts'
import type { Command, StatusInput } from '../core/events/commands.ts'
import { readCommand } from '../core/events/commands.ts'
import { decode } from '../core/events/kafka-codec.ts'
import type { TopicNames } from '../core/events/topics.ts'
import type { Component } from '../core/lifecycle.ts'
import type { Logger } from '../core/log.ts'
import type { CommandQueue } from '../core/registry/command-queue.ts'
import type { Device, Tenant } from '../core/registry/model.ts'
import type { Dispatcher } from './dispatcher.ts'
import { PENDING_TOPIC } from './dispatcher.ts'
import type { CommandMetrics } from './metrics.ts'
import type { StatusWriter } from './status.ts'

/**
 * A command with ttl 0 (only if connected now) that found a route is queued this long, so that
 * the instance holding the device has time to claim it; past it, it expires like any other.
 */
export const CONNECTED_GRACE_MS = 10_000

export interface RouterDeps {
  readonly bus: Pick<EventBus, 'subscribe' | 'publish'>
  readonly topics: Pick<TopicNames, 'commands'> & { readonly commandsGroup: string }
  readonly queue: CommandQueue
  readonly cluster: Pick<ClusterState, 'instance' | 'routes' | 'send'>
  readonly tenant: (id: string) => Promise<Tenant | undefined>
  readonly findDevice: (tenant: string, device: string) => Promise<Device | undefined>
  readonly dispatcher: Pick<Dispatcher, 'kick' | 'reachable'>
  readonly statuses: StatusWriter
  /** A dead-letter record for a command event that cannot be read (step `commands`). */
  readonly deadLetter: (message: BusMessage, reason: string, detail: string) => OutgoingRecord
  readonly metrics: CommandMetrics
  readonly log: Logger
  readonly defaultTtlMs: number
  readonly maxBatch?: number | undefined
  readonly now?: (() => Date) | undefined
}

export function createRouter(deps: RouterDeps): Component {
  const { bus, queue, cluster, statuses, dispatcher, log } = deps
  const now = deps.now ?? (() => new Date())
  let subscription: Subscription | undefined

  /** Instances holding a route to the device or to one of its gateways. */
  async function routesTo(command: Command, device: Device): Promise<Set<string>> {
    const instances = new Set<string>()
    for (const id of [command.device, ...device.gateways]) {
      for (const instance of await cluster.routes({ tenant: command.tenant, device: id }))
        instances.add(instance)
    }
    return instances
  }

  /** What routing one record leads to, written for the whole batch at once. */
  interface Routed {
    readonly status?: StatusInput
    readonly queued?: { readonly command: Command; readonly instances: ReadonlySet<string> }
  }

  const refuse = (command: Command, status: 'expired' | 'failed', reason: string): Routed => ({
    status: { command, status, reason, protocol: command.origin },
  })

  async function route(message: BusMessage): Promise<Routed> {
    let command: Command
    try {
      const event = decode({
        key: message.key === undefined ? undefined : Buffer.from(message.key),
        value: message.value,
        headers: message.headers,
      })
      command = readCommand(event, {
        defaultTtlMs: deps.defaultTtlMs,
        receivedAt: new Date(message.timestamp),
      })
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err)
      deps.metrics.invalid()
      log.warn(
        { topic: message.topic, partition: message.partition, offset: message.offset, detail },
        'invalid command dead-lettered',
      )
      await bus.publish([deps.deadLetter(message, 'command-invalid', detail)])
      return {}
    }
    const tenant = await deps.tenant(command.tenant)
    if (tenant === undefined) return refuse(command, 'failed', 'tenant-unknown')
    if (!tenant.enabled) return refuse(command, 'failed', 'tenant-disabled')
    const device = await deps.findDevice(command.tenant, command.device)
    if (device === undefined) return refuse(command, 'failed', 'device-unknown')
    if (!device.enabled) return refuse(command, 'failed', 'device-disabled')

    const at = now()
    const instances = await routesTo(command, device)
    const connectedOnly = command.expiresAt.getTime() <= command.time.getTime()
    if (connectedOnly) {
      if (instances.size === 0 && !(await dispatcher.reachable(command.tenant, command.device)))
        return refuse(command, 'expired', 'not-connected')
      command = { ...command, expiresAt: new Date(at.getTime() + CONNECTED_GRACE_MS) }
    } else if (command.expiresAt.getTime() <= at.getTime()) {
      return refuse(command, 'expired', 'ttl')
    }
    if ((await queue.enqueue(command)) === 'full') return refuse(command, 'failed', 'queue-full')
    return {
      status: { command, status: 'accepted', protocol: command.origin },
      queued: { command, instances },
    }
  }

  /** Tells the instances holding a route, once per device of the batch. */
  async function notify(queued: ReadonlyArray<NonNullable<Routed['queued']>>): Promise<void> {
    const told = new Set<string>()
    for (const { command, instances } of queued) {
      const key = `${command.tenant}/${command.device}`
      if (told.has(key)) continue
      told.add(key)
      const body = JSON.stringify({ tenant: command.tenant, device: command.device })
      for (const instance of instances) {
        if (instance === cluster.instance) continue
        await cluster
          .send(instance, PENDING_TOPIC, body)
          .catch((err: unknown) => log.warn({ err, instance }, 'could not tell an instance about a command'))
      }
      // Here too: a local sink or an offline one (TTN) may take it, and a drain that finds nothing is cheap.
      dispatcher.kick(command.tenant, command.device)
    }
  }

  return {
    name: 'command-router',
    async start() {
      subscription = await bus.subscribe({
        group: deps.topics.commandsGroup,
        topics: [deps.topics.commands],
        from: 'earliest',
        maxBatch: deps.maxBatch,
        // Records of one partition in order: one device's commands keep their order into the queue.
        handler: async (batch) => {
          const routed: Routed[] = []
          for (const message of batch) routed.push(await route(message))
          // Statuses before the commit: a crash re-routes the batch (the queue keeps an id once).
          await statuses.write(...routed.flatMap((r) => (r.status === undefined ? [] : [r.status])))
          await notify(routed.flatMap((r) => (r.queued === undefined ? [] : [r.queued])))
        },
        onError: (err, batch) =>
          log.warn({ err, records: batch.length }, 'routing commands failed; the batch will be retried'),
      })
      log.info({ topic: deps.topics.commands, group: deps.topics.commandsGroup }, 'command router started')
    },
    async stop() {
      await subscription?.close()
      subscription = undefined
    },
  }
}
