// Tenant topics (`<prefix>.events.<tenant>`): created when the registry says a tenant was created,
// and ensured before the first event of a tenant whose topic is missing (a change event may have
// been missed, or the tenant predates this process).
import type { BusAdmin } from '../core/bus/bus.ts'
import type { TopicNames } from '../core/events/topics.ts'
import type { Logger } from '../core/log.ts'
import type { RegistryChange } from '../core/registry/model.ts'

export interface TenantTopics {
  /** Creates the tenant's topic unless this process already knows it exists. */
  ensure(tenant: string): Promise<void>
  /** Reacts to a registry change: creates the topic of a created tenant. */
  onChange(change: RegistryChange): void
}

export interface TenantTopicsConfig {
  readonly topics: TopicNames
  readonly partitions: number
}

export interface TenantTopicsDeps {
  readonly admin: Pick<BusAdmin, 'createTopics'>
  readonly log: Logger
}

/** Remembered tenants are bounded; forgetting one costs only an idempotent createTopics call. */
const MAX_KNOWN = 100_000

export function createTenantTopics(config: TenantTopicsConfig, deps: TenantTopicsDeps): TenantTopics {
  const known = new Set<string>()
  const pending = new Map<string, Promise<void>>()

  function ensure(tenant: string): Promise<void> {
    if (known.has(tenant)) return Promise.resolve()
    let creating = pending.get(tenant)
    if (creating === undefined) {
      creating = deps.admin
        .createTopics([{ name: config.topics.events(tenant), partitions: config.partitions }])
        .then(() => {
          if (known.size >= MAX_KNOWN) known.clear()
          known.add(tenant)
        })
        .finally(() => pending.delete(tenant))
      pending.set(tenant, creating)
    }
    return creating
  }

  return {
    ensure,
    onChange(change) {
      if (change.resource !== 'tenant') return
      if (change.op === 'created') {
        ensure(change.tenant).catch((err: unknown) =>
          // Not fatal: the first event of the tenant ensures the topic again.
          deps.log.warn({ err, tenant: change.tenant }, 'could not create the tenant topic'),
        )
      } else if (change.op === 'deleted') {
        // The topic stays (deletion after a grace period is not implemented yet); a tenant created
        // again under the same id must be ensured again.
        known.delete(change.tenant)
      }
    },
  }
}
