// Creating a tenant's event topic for a consumer that reads it before the processors wrote to it
// (a webhook subscription or an application MQTT reader on a new bus or topic prefix), with the
// tenant's partitions and retention, as the processors and the event WebSocket create it.
import type { BusAdmin } from '../core/bus/bus.ts'
import type { TopicNames } from '../core/events/topics.ts'
import { tenantTopicSpec } from '../core/events/topics.ts'
import type { Tenant } from '../core/registry/model.ts'

export interface TenantTopicDeps {
  readonly admin: Pick<BusAdmin, 'describeTopic' | 'createTopics'>
  readonly topics: TopicNames
  /** Partitions when the tenant's settings give none (TRIBUTARY_TOPIC_PARTITIONS). */
  readonly partitions: number
  readonly tenant: (id: string) => Promise<Tenant | undefined>
}

export function tenantTopicEnsurer(deps: TenantTopicDeps): (tenant: string) => Promise<void> {
  return async (tenant) => {
    const name = deps.topics.events(tenant)
    if ((await deps.admin.describeTopic(name)) !== undefined) return
    const row = await deps.tenant(tenant)
    await deps.admin.createTopics([tenantTopicSpec(name, row?.settings, deps.partitions)])
  }
}
