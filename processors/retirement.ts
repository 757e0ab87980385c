// Retiring the topics of deleted tenants: deleting a tenant leaves a tombstone in the registry (in
// the same transaction); once the grace period has passed, the processors delete the tenant's
// topics and drop the tombstone. A tenant created again under the same id within the grace period
// removes its tombstone and keeps its topics. Every processor process sweeps; deleting a topic
// twice is harmless.
import type { BusAdmin } from '../core/bus/bus.ts'
import type { TopicNames } from '../core/events/topics.ts'
import type { Component } from '../core/lifecycle.ts'
import type { Logger } from '../core/log.ts'
import type { RegistryStore } from '../core/registry/store.ts'

export interface RetirementConfig {
  readonly topics: TopicNames
  /** How long a deleted tenant's topics are kept. */
  readonly graceMs: number
  /** Time between sweeps (default: a quarter of the grace period, between 1 s and 5 min). */
  readonly intervalMs?: number | undefined
}

export interface RetirementDeps {
  readonly admin: Pick<BusAdmin, 'listTopics' | 'deleteTopics'>
  readonly store: Pick<RegistryStore, 'tenantTombstones' | 'dropTenantTombstone' | 'getTenant'>
  readonly log: Logger
  readonly now?: (() => Date) | undefined
}

export interface TopicRetirement extends Component {
  /** One sweep: deletes the topics of every tenant whose grace period has passed; returns their ids. */
  sweep(): Promise<string[]>
}

const BATCH = 100

export function createTopicRetirement(config: RetirementConfig, deps: RetirementDeps): TopicRetirement {
  const now = deps.now ?? (() => new Date())
  const intervalMs = config.intervalMs ?? Math.min(300_000, Math.max(1_000, Math.floor(config.graceMs / 4)))
  let timer: NodeJS.Timeout | undefined
  let running: Promise<unknown> | undefined

  async function sweep(): Promise<string[]> {
    const due = await deps.store.tenantTombstones(new Date(now().getTime() - config.graceMs), BATCH)
    if (due.length === 0) return []
    const topics = await deps.admin.listTopics()
    const retired: string[] = []
    for (const { tenant } of due) {
      // Created again since: the tombstone should be gone already; never delete a live tenant's topics.
      if ((await deps.store.getTenant(tenant)) !== undefined) {
        await deps.store.dropTenantTombstone(tenant)
        continue
      }
      const names = topics.filter((name) => config.topics.tenantOf(name) === tenant)
      if (names.length > 0) await deps.admin.deleteTopics(names)
      await deps.store.dropTenantTombstone(tenant)
      deps.log.info({ tenant, topics: names }, 'deleted the topics of a deleted tenant')
      retired.push(tenant)
    }
    return retired
  }

  function schedule(): void {
    timer = setTimeout(() => {
      running = sweep()
        .catch((err: unknown) =>
          deps.log.warn({ err }, 'retiring deleted tenants’ topics failed; will retry'),
        )
        .finally(() => {
          running = undefined
          if (timer !== undefined) schedule()
        })
    }, intervalMs)
    timer.unref()
  }

  return {
    name: 'topic-retirement',
    sweep,
    start() {
      schedule()
      return Promise.resolve()
    },
    async stop() {
      clearTimeout(timer)
      timer = undefined
      await running
    },
  }
}
