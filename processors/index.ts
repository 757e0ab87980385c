// The processor component: consumes the ingress topic in the `tributary-processors` group, runs
// the steps on each event, and publishes accepted events to their tenant topic and refused ones to
// the dead letter — in one publish per batch, before the handler resolves and the bus commits.
import type { BusMessage, EventBus, OutgoingRecord, Subscription } from '../core/bus/bus.ts'
import type { CloudEvent } from '../core/events/cloudevent.ts'
import { isTenantId } from '../core/events/ids.ts'
import { decode, encodeBinary } from '../core/events/kafka-codec.ts'
import type { TopicNames } from '../core/events/topics.ts'
import type { Component } from '../core/lifecycle.ts'
import type { Logger } from '../core/log.ts'
import type { RegistryAuth } from '../core/registry/auth.ts'
import { deadLetter } from './deadletter.ts'
import type { NamedStep } from './step.ts'
import { runSteps } from './step.ts'
import { createAuthorize } from './steps/authorize.ts'
import { createPassthrough } from './steps/passthrough.ts'
import { createTenantTopics } from './topics.ts'

export const PROCESSOR_GROUP = 'tributary-processors'

export interface ProcessorConfig {
  readonly topics: TopicNames
  /** Partitions of tenant topics created here. */
  readonly topicPartitions: number
  /** Most ingress records per batch (default: the bus default). */
  readonly maxBatch?: number | undefined
  /** First redelivery delay after a failed batch (default: the bus default). */
  readonly retryBackoffMs?: number | undefined
}

export interface ProcessorDeps {
  readonly bus: Pick<EventBus, 'subscribe' | 'publish' | 'admin'>
  readonly auth: Pick<RegistryAuth, 'tenant' | 'findDevice' | 'onChange'>
  readonly log: Logger
  readonly now?: (() => Date) | undefined
}

export interface Processor extends Component {
  /** Batches whose output is durable (and whose offsets the bus may now commit). */
  readonly batches: number
}

/** The steps in their order; the first terminal result wins. */
export function defaultSteps(deps: Pick<ProcessorDeps, 'auth'>): NamedStep[] {
  const tenant = (id: string) => deps.auth.tenant(id)
  const findDevice = (t: string, d: string) => deps.auth.findDevice(t, d)
  return [
    { name: 'passthrough', run: createPassthrough({ tenant }) },
    { name: 'authorize', run: createAuthorize({ tenant, findDevice }) },
  ]
}

function decodeMessage(message: BusMessage): CloudEvent {
  return decode({
    key: message.key === undefined ? undefined : Buffer.from(message.key),
    value: message.value,
    headers: message.headers,
  })
}

export function createProcessor(config: ProcessorConfig, deps: ProcessorDeps): Processor {
  const { bus, log } = deps
  const topics = config.topics
  const now = deps.now ?? (() => new Date())
  const steps = defaultSteps(deps)
  const tenantTopics = createTenantTopics(
    { topics, partitions: config.topicPartitions },
    { admin: bus.admin, log },
  )
  let subscription: Subscription | undefined
  let unsubscribe: (() => void) | undefined
  let batches = 0

  async function handle(batch: readonly BusMessage[]): Promise<void> {
    const out: OutgoingRecord[] = []
    const tenants = new Set<string>()
    for (const message of batch) {
      const at = now()
      let event: CloudEvent
      try {
        event = decodeMessage(message)
      } catch (err) {
        log.debug(
          { err, partition: message.partition, offset: message.offset },
          'ingress record is not a CloudEvent',
        )
        out.push(deadLetter(topics.deadletter, message, 'decode', 'event-invalid', at))
        continue
      }
      const verdict = await runSteps(steps, event, { bytes: message.value?.length ?? 0, now: at })
      const tenant = event.attributes.tenant
      if (verdict.kind === 'drop') continue
      if (verdict.kind === 'reject') {
        out.push(deadLetter(topics.deadletter, message, verdict.step, verdict.reason, at))
      } else if (tenant === undefined || !isTenantId(tenant)) {
        out.push(deadLetter(topics.deadletter, message, 'route', 'tenant-invalid', at))
      } else {
        const encoded = encodeBinary(event)
        tenants.add(tenant)
        out.push({
          topic: topics.events(tenant),
          key: encoded.key?.toString() ?? message.key,
          value: encoded.value,
          headers: encoded.headers,
        })
      }
    }
    for (const tenant of tenants) await tenantTopics.ensure(tenant)
    // One publish keeps the batch's order per key; it resolves only when every record is durable,
    // and only then may the bus commit the input offsets (at-least-once).
    if (out.length > 0) await bus.publish(out)
    batches++
  }

  return {
    name: 'processors',
    get batches() {
      return batches
    },
    async start() {
      unsubscribe = deps.auth.onChange((change) => tenantTopics.onChange(change))
      subscription = await bus.subscribe({
        group: PROCESSOR_GROUP,
        topics: [topics.ingress],
        // A new deployment processes what the adapters published before the processors started.
        from: 'earliest',
        handler: handle,
        maxBatch: config.maxBatch,
        retryBackoffMs: config.retryBackoffMs,
        onError: (err, batch) =>
          log.warn(
            { err, partition: batch[0]?.partition, offset: batch[0]?.offset, size: batch.length },
            'processing failed; the batch will be redelivered',
          ),
      })
    },
    async stop() {
      unsubscribe?.()
      unsubscribe = undefined
      await subscription?.close()
      subscription = undefined
    },
  }
}
