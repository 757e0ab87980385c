// Kafka topic names of the pipeline: the only place that spells them.
import { assertTenantId } from './ids.ts'

const TOPIC_PREFIX = /^[A-Za-z0-9._-]{1,100}$/

export interface TopicNames {
  readonly prefix: string
  readonly ingress: string
  readonly commands: string
  readonly registry: string
  readonly deadletter: string
  /** Processed events of one tenant. Tenant ids are topic-safe by construction (see ids.ts). */
  events(tenant: string): string
  /** Inverse of events(): the tenant of a tenant topic, or undefined. */
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
    events: (tenant) => `${eventsPrefix}${assertTenantId(tenant)}`,
    tenantOf: (topic) => (topic.startsWith(eventsPrefix) ? topic.slice(eventsPrefix.length) : undefined),
  }
}
