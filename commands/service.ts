// The API's side of commands: publishes command events to the commands topic and waits for the
// outcome of request-style ones (waiters.ts). A component, so that waits end when the process stops.
import type { EventBus } from '../core/bus/bus.ts'
import type { ClusterState } from '../core/cluster/cluster.ts'
import type { CommandInput } from '../core/events/commands.ts'
import { buildCommandEvent } from '../core/events/commands.ts'
import { encodeBinary } from '../core/events/kafka-codec.ts'
import type { Component } from '../core/lifecycle.ts'
import type { Logger } from '../core/log.ts'
import type { Waiters, WaitOutcome } from './waiters.ts'
import { createWaiters } from './waiters.ts'

/** What the command route of the API needs (api/routes/commands.ts). */
export interface CommandSender {
  /** Whether the device exists (a cached lookup: sending is a hot path). */
  deviceExists(tenant: string, device: string): Promise<boolean>
  /** The ttl of a command sent without one. */
  readonly defaultTtlMs: number
  /** The longest `wait` allowed. */
  readonly maxWaitMs: number
  /** Resolves once the command is durable on the commands topic. */
  send(command: CommandInput): Promise<void>
  /** Registers a wait for the request id; call before send. */
  wait(
    tenant: string,
    device: string,
    requestId: string,
    timeoutMs: number,
  ): Promise<{ readonly outcome: Promise<WaitOutcome>; readonly cancel: () => void }>
}

export interface CommandService extends CommandSender, Component {}

export interface CommandServiceDeps {
  readonly bus: Pick<EventBus, 'publish'>
  readonly topic: string
  readonly cluster: Pick<ClusterState, 'instance' | 'setValue' | 'onMessage'>
  /** The registry's cached device lookup. */
  readonly findDevice: (tenant: string, device: string) => Promise<unknown>
  /**
   * The registry store itself, asked only when the cache says the device does not exist: the cache
   * keeps "not found" for a while, and a device created a moment ago (its change event still on
   * its way) must not be refused.
   */
  readonly readDevice: (tenant: string, device: string) => Promise<unknown>
  readonly defaultTtlMs: number
  readonly maxWaitMs: number
  readonly log: Logger
}

export function createCommandService(deps: CommandServiceDeps): CommandService {
  let waiters: Waiters | undefined
  const started = (): Waiters => (waiters ??= createWaiters({ cluster: deps.cluster, log: deps.log }))
  return {
    name: 'command-service',
    deviceExists: async (tenant, device) =>
      (await deps.findDevice(tenant, device)) !== undefined ||
      (await deps.readDevice(tenant, device)) !== undefined,
    defaultTtlMs: deps.defaultTtlMs,
    maxWaitMs: deps.maxWaitMs,
    async send(command) {
      const { key, value, headers } = encodeBinary(buildCommandEvent(command))
      await deps.bus.publish([{ topic: deps.topic, key: key?.toString(), value, headers }])
    },
    wait: (tenant, device, requestId, timeoutMs) => started().register(tenant, device, requestId, timeoutMs),
    async start() {
      started()
    },
    async stop() {
      waiters?.stop()
      waiters = undefined
    },
  }
}
