// Tenant topics (`<prefix>.events.<tenant>` and the copy topics `<prefix>.events.<tenant>.<name>` of
// route rules): created when the registry says a tenant was created, and ensured before the first
// event of a topic this process has not seen (a change event may have been missed, or the tenant
// predates this process). Partitions and retention come from the tenant's settings
// (`topicPartitions`, `topicRetentionMs`) when it has them, else from the deployment's defaults.
import type { BusAdmin } from '../core/bus/bus.ts'
import type { TopicNames } from '../core/events/topics.ts'
import { tenantTopicSpec } from '../core/events/topics.ts'
import type { Logger } from '../core/log.ts'
import type { RegistryChange, Tenant } from '../core/registry/model.ts'

export interface TenantTopics {
  /** Creates the tenant's topic (or one of its copy topics) unless this process knows it exists. */
  ensure(tenant: string, copy?: string): Promise<void>
  /** Reacts to a registry change: creates the topic of a created tenant. */
  onChange(change: RegistryChange): void
}

export interface TenantTopicsConfig {
  readonly topics: TopicNames
  /** Partitions when the tenant's settings give none. */
  readonly partitions: number
}

export interface TenantTopicsDeps {
  readonly admin: Pick<BusAdmin, 'createTopics'>
  /** The tenant's settings; undefined (unknown tenant) means the defaults. */
  readonly tenant?: ((id: string) => Promise<Tenant | undefined>) | undefined
  readonly log: Logger
}

/** Remembered topics are bounded; forgetting one costs only an idempotent createTopics call. */
const MAX_KNOWN = 100_000

export function createTenantTopics(config: TenantTopicsConfig, deps: TenantTopicsDeps): TenantTopics {
  const known = new Set<string>()
  const pending = new Map<string, Promise<void>>()

  async function create(tenant: string, name: string): Promise<void> {
    const row = deps.tenant === undefined ? undefined : await deps.tenant(tenant)
    await deps.admin.createTopics([tenantTopicSpec(name, row?.settings, config.partitions)])
    if (known.size >= MAX_KNOWN) known.clear()
    known.add(name)
  }

  function ensure(tenant: string, copy?: string): Promise<void> {
    const name = copy === undefined ? config.topics.events(tenant) : config.topics.tenantCopy(tenant, copy)
    if (known.has(name)) return Promise.resolve()
    let creating = pending.get(name)
    if (creating === undefined) {
      creating = create(tenant, name).finally(() => pending.delete(name))
      pending.set(name, creating)
    }
    return creating
  }

  function forget(tenant: string): void {
    for (const name of known) if (config.topics.tenantOf(name) === tenant) known.delete(name)
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
        // The topics stay for the grace period (retirement.ts); a tenant created again under the
        // same id must be ensured again.
        forget(change.tenant)
      }
    },
  }
}
