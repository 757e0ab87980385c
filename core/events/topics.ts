// Kafka topic names of the pipeline: the only place that spells them, and the spec of a tenant's
// topics from its settings.
import type { TopicSpec } from '../bus/bus.ts'
import { assertTenantId, isTenantId } from './ids.ts'

const TOPIC_PREFIX = /^[A-Za-z0-9._-]{1,100}$/
/** Names of a tenant's copy topics (route rules' `copy` action). */
export const COPY_NAME = /^[a-z0-9-]{1,32}$/

export interface TopicNames {
  readonly prefix: string
  readonly ingress: string
  readonly commands: string
  readonly registry: string
  readonly deadletter: string
  /** Processed events of one tenant. Tenant ids are topic-safe by construction (see ids.ts). */
  events(tenant: string): string
  /** An extra topic of one tenant that route rules copy events to: `<prefix>.events.<tenant>.<name>`. */
  tenantCopy(tenant: string, name: string): string
  /**
   * Consumer groups of the pipeline's own readers, named after the prefix so that deployments
   * sharing a Kafka cluster never share a group (the default prefix gives `tributary-processors`).
   */
  readonly groups: {
    readonly processors: string
    readonly deadLetterIndex: string
    /** The command router (commands/router.ts). */
    readonly commands: string
  }
  /** The tenant of a tenant topic or of one of its copy topics (tenant ids hold no dots), or undefined. */
  tenantOf(topic: string): string | undefined
}

export function topicNames(prefix = 'tributary'): TopicNames {
  if (!TOPIC_PREFIX.test(prefix)) {
    throw new RangeError(`topic prefix ${JSON.stringify(prefix)} must be 1-100 of A-Z a-z 0-9 . _ -`)
  }
  const eventsPrefix = `${prefix}.events.`
  return {
    prefix,
    ingress: `${prefix}.ingress`,
    commands: `${prefix}.commands`,
    registry: `${prefix}.registry`,
    deadletter: `${prefix}.deadletter`,
    groups: {
      processors: `${prefix}-processors`,
      deadLetterIndex: `${prefix}-deadletter-index`,
      commands: `${prefix}-commands`,
    },
    events: (tenant) => `${eventsPrefix}${assertTenantId(tenant)}`,
    tenantCopy: (tenant, name) => {
      if (!COPY_NAME.test(name)) {
        throw new RangeError(`copy topic name ${JSON.stringify(name)} must be 1-32 of a-z 0-9 -`)
      }
      return `${eventsPrefix}${assertTenantId(tenant)}.${name}`
    },
    tenantOf: (topic) => {
      if (!topic.startsWith(eventsPrefix)) return undefined
      const tenant = topic.slice(eventsPrefix.length).split('.', 1)[0]
      return tenant === undefined || !isTenantId(tenant) ? undefined : tenant
    },
  }
}

const wholeNumber = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isSafeInteger(value) ? value : undefined

/**
 * The spec of a tenant's topic (events or copy) from the tenant's settings `topicPartitions` and
 * `topicRetentionMs` (validated by the registry on write), else `partitions` and the bus defaults.
 */
export function tenantTopicSpec(
  name: string,
  settings: Readonly<Record<string, unknown>> | undefined,
  partitions: number,
): TopicSpec {
  const retentionMs = wholeNumber(settings?.['topicRetentionMs'])
  return {
    name,
    partitions: wholeNumber(settings?.['topicPartitions']) ?? partitions,
    ...(retentionMs === undefined ? {} : { config: { retentionMs } }),
  }
}
