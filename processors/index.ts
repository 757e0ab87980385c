// The processor component: consumes the ingress topic in the `tributary-processors` group, runs
// the steps on each event, and publishes accepted events to their tenant topic and refused ones to
// the dead letter — in one publish per batch, before the handler resolves and the bus commits.
import { SpanKind, startStage } from '../core/tracing.ts'
import type { BusMessage, EventBus, OutgoingRecord, Subscription } from '../core/bus/bus.ts'
import type { ClusterState } from '../core/cluster/cluster.ts'
import type { CloudEvent } from '../core/events/cloudevent.ts'
import { isTenantId } from '../core/events/ids.ts'
import { decode, encodeBinary } from '../core/events/kafka-codec.ts'
import type { TopicNames } from '../core/events/topics.ts'
import type { Component } from '../core/lifecycle.ts'
import type { Logger } from '../core/log.ts'
import type { Registry } from '../core/metrics.ts'
import type { RegistryAuth } from '../core/registry/auth.ts'
import { deadLetter } from './deadletter.ts'
import { createProcessorMetrics } from './metrics.ts'
import type { NamedStep } from './step.ts'
import { runSteps } from './step.ts'
import { createAuthorize } from './steps/authorize.ts'
import { createPassthrough } from './steps/passthrough.ts'
import { createRoute } from './steps/route.ts'
import { createTenancy } from './steps/tenancy.ts'
import { createValidate } from './steps/validate.ts'
import { createTenantTopics } from './topics.ts'

export interface ProcessorConfig {
  readonly topics: TopicNames
  /** Partitions of tenant topics created here. */
  readonly topicPartitions: number
  /** Most ingress records per batch (default: the bus default). */
  readonly maxBatch?: number | undefined
  /** First redelivery delay after a failed batch (default: the bus default). */
  readonly retryBackoffMs?: number | undefined
  /** How often the consumer lag of the owned partitions is sampled for the metrics (default 5 s). */
  readonly lagSampleMs?: number | undefined
}

export interface ProcessorDeps {
  readonly bus: Pick<EventBus, 'subscribe' | 'publish' | 'admin'>
  readonly auth: Pick<
    RegistryAuth,
    'tenant' | 'findDevice' | 'findCredential' | 'onChange' | 'channelSchema' | 'routeTable'
  >
  /** Tenant quotas are counted here (Redis when configured), so they hold across processes. */
  readonly cluster: Pick<ClusterState, 'take'>
  readonly log: Logger
  readonly metrics?: Registry | undefined
  readonly now?: (() => Date) | undefined
}

export interface Processor extends Component {
  /** Batches whose output is durable (and whose offsets the bus may now commit). */
  readonly batches: number
}

/** The steps in their order; the first terminal result wins. */
export function defaultSteps(deps: Pick<ProcessorDeps, 'auth' | 'cluster'>): NamedStep[] {
  const { auth, cluster } = deps
  const tenant = (id: string) => auth.tenant(id)
  const findDevice = (t: string, d: string) => auth.findDevice(t, d)
  return [
    { name: 'passthrough', run: createPassthrough({ tenant }) },
    {
      name: 'authorize',
      run: createAuthorize({
        tenant,
        findDevice,
        findCredential: (t, d, id) => auth.findCredential(t, d, id),
      }),
    },
    { name: 'tenancy', run: createTenancy({ tenant, take: (k, r, b, c) => cluster.take(k, r, b, c) }) },
    { name: 'validate', run: createValidate({ channelSchema: (t, c) => auth.channelSchema(t, c) }) },
    { name: 'route', run: createRoute({ routeTable: (t) => auth.routeTable(t), findDevice }) },
  ]
}

/** The `credential` attribute is for the processors' authorization only: it never reaches a tenant topic. */
function withoutIngressAttributes(event: CloudEvent): CloudEvent {
  if (event.attributes['credential'] === undefined) return event
  const { credential: _credential, ...attributes } = event.attributes
  return { attributes, data: event.data }
}

/** The event as this stage passes it on: with the processor's span as its traceparent, when traced. */
function withTraceparent(event: CloudEvent, traceparent: string | undefined): CloudEvent {
  if (traceparent === undefined) return event
  return { attributes: { ...event.attributes, traceparent }, data: event.data }
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
  const metrics = createProcessorMetrics(deps.metrics)
  const tenantTopics = createTenantTopics(
    { topics, partitions: config.topicPartitions },
    { admin: bus.admin, tenant: (id) => deps.auth.tenant(id), log },
  )
  let subscription: Subscription | undefined
  let unsubscribe: (() => void) | undefined
  let lagTimer: NodeJS.Timeout | undefined
  let batches = 0

  /** The ingress partitions this member owns (`topic:partition`; registry partitions left out). */
  const ownedIngress = (): string[] =>
    (subscription?.assignments() ?? []).filter((a) => a.startsWith(`${topics.ingress}:`))

  // Lag of the partitions this member owns: end offset minus the group's committed offset.
  async function sampleLag(): Promise<void> {
    const owned = ownedIngress()
    metrics.partitions(owned.length)
    if (owned.length === 0) return
    const [ends, committed] = await Promise.all([
      bus.admin.offsets(topics.ingress),
      bus.admin.committed(topics.groups.processors, topics.ingress),
    ])
    for (const { partition, earliest, next } of ends) {
      if (!owned.includes(`${topics.ingress}:${partition}`)) continue
      metrics.lag(partition, Math.max(0, next - (committed.get(partition) ?? earliest)))
    }
  }

  async function handle(batch: readonly BusMessage[]): Promise<void> {
    const begin = performance.now()
    const out: OutgoingRecord[] = []
    // The topics this batch writes to: a tenant's events topic, or [tenant, copy] for a copy topic.
    const ensure = new Map<string, string | readonly [string, string]>()
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
        metrics.event('rejected', 'decode', 'event-invalid')
        continue
      }
      const span = startStage('process', SpanKind.CONSUMER, event.attributes.traceparent, {
        'tributary.tenant': event.attributes.tenant ?? '',
        'tributary.device': event.attributes.device ?? '',
        'cloudevents.event_type': event.attributes.type,
        'messaging.destination.partition.id': String(message.partition),
      })
      const verdict = await runSteps(steps, event, { bytes: message.value?.length ?? 0, now: at })
      span?.set({ 'tributary.outcome': verdict.kind, 'tributary.step': verdict.step ?? 'none' })
      if (verdict.kind === 'drop') {
        span?.end()
        metrics.event('dropped', verdict.step)
        continue
      }
      if (verdict.kind === 'reject') {
        span?.fail(`${verdict.step}: ${verdict.reason}`)
        span?.end()
        out.push(deadLetter(topics.deadletter, message, verdict.step, verdict.reason, at, verdict.detail))
        metrics.event('rejected', verdict.step, verdict.reason)
        continue
      }
      // The span ends with the decision; the published records carry it as their traceparent.
      span?.end()
      // Route rules may change type, subject and extensions, never the tenant or the device.
      const tenant = verdict.event.attributes.tenant
      if (tenant === undefined || !isTenantId(tenant)) {
        out.push(deadLetter(topics.deadletter, message, 'route', 'tenant-invalid', at))
        metrics.event('rejected', 'route', 'tenant-invalid')
        continue
      }
      const encoded = encodeBinary(
        withTraceparent(withoutIngressAttributes(verdict.event), span?.traceparent),
      )
      const record = {
        key: encoded.key?.toString() ?? message.key,
        value: encoded.value,
        headers: encoded.headers,
      }
      ensure.set(tenant, tenant)
      out.push({ topic: topics.events(tenant), ...record })
      for (const copy of verdict.copies) {
        ensure.set(`${tenant}.${copy}`, [tenant, copy])
        out.push({ topic: topics.tenantCopy(tenant, copy), ...record })
      }
      metrics.event('accepted', verdict.step ?? 'none')
      if (verdict.copies.length > 0) metrics.copied(verdict.copies.length)
    }
    for (const target of ensure.values()) {
      await (typeof target === 'string' ? tenantTopics.ensure(target) : tenantTopics.ensure(...target))
    }
    // One publish keeps the batch's order per key; it resolves only when every record is durable,
    // and only then may the bus commit the input offsets (at-least-once).
    if (out.length > 0) await bus.publish(out)
    batches++
    metrics.partitions(ownedIngress().length)
    metrics.batch(batch.length, (performance.now() - begin) / 1000)
  }

  return {
    name: 'processors',
    get batches() {
      return batches
    },
    async start() {
      unsubscribe = deps.auth.onChange((change) => tenantTopics.onChange(change))
      subscription = await bus.subscribe({
        group: topics.groups.processors,
        // Registry changes pass through to the tenant topics too (step passthrough).
        topics: [topics.ingress, topics.registry],
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
      metrics.partitions(ownedIngress().length)
      const every = config.lagSampleMs ?? 5_000
      const sample = (): void => {
        lagTimer = setTimeout(() => {
          sampleLag()
            .catch((err: unknown) => log.debug({ err }, 'sampling the ingress lag failed'))
            .finally(() => {
              if (lagTimer !== undefined) sample()
            })
        }, every)
        lagTimer.unref()
      }
      sample()
    },
    async stop() {
      clearTimeout(lagTimer)
      lagTimer = undefined
      unsubscribe?.()
      unsubscribe = undefined
      await subscription?.close()
      subscription = undefined
    },
  }
}
