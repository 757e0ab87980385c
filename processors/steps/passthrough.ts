// Connection, registry, command status, configuration delivery and change events are Tributary's own statements about a device,
// not device data: they go to the tenant topic without authorization or quotas (a disconnect caused
// by disabling the device, or the failure of a command to a deleted device, must still reach
// applications). The tenant must exist, or there is no topic to go to: a
// connection event of an unknown tenant is dead-lettered; a registry event of a tenant that is gone
// (its own `deleted` change, or any change that arrives after it) has no one to tell and is dropped.
import { eventTypes } from '../../core/events/build.ts'
import type { Tenant } from '../../core/registry/model.ts'
import type { Step } from '../step.ts'
import { accept, drop, next, reject } from '../step.ts'

export interface PassthroughDeps {
  tenant(id: string): Promise<Tenant | undefined>
}

const PASSING: ReadonlySet<string> = new Set([
  eventTypes.connection,
  eventTypes.registry,
  eventTypes['command.status'],
  eventTypes['config.delivered'],
  eventTypes['config.changed'],
])

export function createPassthrough(deps: PassthroughDeps): Step {
  return async (event) => {
    if (!PASSING.has(event.attributes.type)) return next
    const tenant = event.attributes.tenant
    if (tenant !== undefined && (await deps.tenant(tenant)) !== undefined) return accept
    return event.attributes.type === eventTypes.registry ? drop : reject('tenant-unknown')
  }
}
