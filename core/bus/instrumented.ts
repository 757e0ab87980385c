// Bus metrics as a decorator around any EventBus (STYLE.md 6): what is published and consumed,
// how long it takes, what fails, and how far each active group lags behind.
import type { Registry } from 'prom-client'
import { isTributaryError } from '../errors.ts'
import { Counter, Gauge, Histogram, LATENCY_BUCKETS } from '../metrics.ts'
import type { EventBus, SubscribeOptions } from './bus.ts'

export function instrumentBus(bus: EventBus, registry: Registry): EventBus {
  const registers = [registry]
  const published = new Counter({
    name: 'tributary_bus_published_records_total',
    help: 'Records the bus acknowledged as durable.',
    labelNames: ['topic'],
    registers,
  })
  const publishedBytes = new Counter({
    name: 'tributary_bus_published_bytes_total',
    help: 'Value bytes of acknowledged records.',
    labelNames: ['topic'],
    registers,
  })
  const publishErrors = new Counter({
    name: 'tributary_bus_publish_errors_total',
    help: 'Publish calls that failed, by error code.',
    labelNames: ['code'],
    registers,
  })
  const publishDuration = new Histogram({
    name: 'tributary_bus_publish_duration_seconds',
    help: 'Time from publish to durable acknowledgement.',
    buckets: LATENCY_BUCKETS,
    registers,
  })
  const consumed = new Counter({
    name: 'tributary_bus_consumed_records_total',
    help: 'Records handled successfully.',
    labelNames: ['group', 'topic'],
    registers,
  })
  const failures = new Counter({
    name: 'tributary_bus_handler_failures_total',
    help: 'Batches whose handler failed (they are redelivered).',
    labelNames: ['group', 'topic'],
    registers,
  })
  const handlerDuration = new Histogram({
    name: 'tributary_bus_handler_duration_seconds',
    help: 'Time a handler took for one batch.',
    labelNames: ['group'],
    buckets: LATENCY_BUCKETS,
    registers,
  })
  const active = new Map<string, Set<string>>()

  new Gauge({
    name: 'tributary_bus_consumer_lag_records',
    help: 'Records published but not yet committed, per active group and partition.',
    labelNames: ['group', 'topic', 'partition'],
    registers,
    async collect() {
      this.reset()
      for (const [group, topics] of active) {
        for (const topic of topics) {
          try {
            const [ends, committed] = await Promise.all([
              bus.admin.offsets(topic),
              bus.admin.committed(group, topic),
            ])
            for (const { partition, next, earliest } of ends) {
              this.set(
                { group, topic, partition: String(partition) },
                next - (committed.get(partition) ?? earliest),
              )
            }
          } catch {
            // A scrape must not fail because one topic could not be read.
          }
        }
      }
    },
  })

  return {
    kind: bus.kind,
    admin: bus.admin,
    health: () => bus.health(),
    close: () => bus.close(),
    async publish(records) {
      const end = publishDuration.startTimer()
      try {
        const acks = await bus.publish(records)
        end()
        for (const r of records) {
          published.inc({ topic: r.topic })
          if (r.value !== undefined) publishedBytes.inc({ topic: r.topic }, r.value.length)
        }
        return acks
      } catch (err) {
        publishErrors.inc({ code: isTributaryError(err) ? err.code : 'UNKNOWN' })
        throw err
      }
    },
    async subscribe(options: SubscribeOptions) {
      const { group } = options
      const subscription = await bus.subscribe({
        ...options,
        handler: async (batch) => {
          const end = handlerDuration.startTimer({ group })
          const topic = batch[0]?.topic ?? ''
          try {
            await options.handler(batch)
            consumed.inc({ group, topic }, batch.length)
          } catch (err) {
            failures.inc({ group, topic })
            throw err
          } finally {
            end()
          }
        },
      })
      let topics = active.get(group)
      if (topics === undefined) active.set(group, (topics = new Set()))
      for (const t of options.topics) topics.add(t)
      return {
        pause: () => subscription.pause(),
        resume: () => subscription.resume(),
        get paused() {
          return subscription.paused
        },
        seek: (position) => subscription.seek(position),
        assignments: () => subscription.assignments(),
        async close() {
          active.delete(group)
          await subscription.close()
        },
      }
    },
  }
}
