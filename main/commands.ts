// Wires the command back-channel: in the adapters role the dispatcher (which the adapters attach
// their sinks to) and the router that feeds it from the commands topic; in the api role the
// service the command route sends through. Status events go to the ingress topic.
import { createDispatcher } from '../commands/dispatcher.ts'
import type { Dispatcher } from '../commands/dispatcher.ts'
import { createCommandMetrics } from '../commands/metrics.ts'
import { createRouter } from '../commands/router.ts'
import { createCommandService } from '../commands/service.ts'
import type { CommandService } from '../commands/service.ts'
import { createStatusWriter } from '../commands/status.ts'
import { topicNames } from '../core/events/topics.ts'
import type { Component } from '../core/lifecycle.ts'
import { deadLetter } from '../processors/deadletter.ts'
import type { RoleDeps } from './role-deps.ts'

export interface CommandDelivery {
  readonly dispatcher: Dispatcher
  /** Dispatcher first, then the router: started before the adapters, stopped after them. */
  readonly components: readonly Component[]
}

export function commandDelivery(deps: RoleDeps): CommandDelivery {
  const { config, bus, cluster, registryParts } = deps
  const log = deps.log.child({ component: 'commands' })
  const topics = topicNames(config.topicPrefix)
  const metrics = createCommandMetrics(deps.registry)
  const statuses = createStatusWriter({ bus, topic: topics.ingress, cluster, metrics, log })
  const findDevice = (tenant: string, device: string) => registryParts.auth.findDevice(tenant, device)
  const dispatcher = createDispatcher({
    queue: registryParts.store.commands,
    cluster,
    findDevice,
    statuses,
    metrics,
    log,
    leaseMs: config.commandLeaseMs,
  })
  const router = createRouter({
    bus,
    topics: {
      commands: topics.commands,
      commandsGroup: topics.groups.commands,
    },
    queue: registryParts.store.commands,
    cluster,
    tenant: (id) => registryParts.auth.tenant(id),
    findDevice,
    dispatcher,
    statuses,
    deadLetter: (message, reason, detail) =>
      deadLetter(topics.deadletter, message, 'commands', reason, new Date(), detail),
    metrics,
    log,
    defaultTtlMs: config.commandTtlMs,
  })
  return { dispatcher, components: [dispatcher, router] }
}

export function commandService(deps: RoleDeps): CommandService {
  const { config, bus, cluster } = deps
  return createCommandService({
    bus,
    topic: topicNames(config.topicPrefix).commands,
    cluster,
    findDevice: (tenant, device) => deps.registryParts.auth.findDevice(tenant, device),
    readDevice: (tenant, device) => deps.registryParts.store.getDevice(tenant, device),
    defaultTtlMs: config.commandTtlMs,
    maxWaitMs: config.commandMaxWaitMs,
    log: deps.log.child({ component: 'commands' }),
  })
}
