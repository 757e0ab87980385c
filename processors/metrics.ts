// Prometheus metrics of the processors (core/metrics.ts conventions): what happened to each
// ingress event, batch time, the partitions this process owns, and the consumer lag it sees.
import type { Registry } from '../core/metrics.ts'
import { Counter, Gauge, Histogram, LATENCY_BUCKETS } from '../core/metrics.ts'

export type Outcome = 'accepted' | 'dropped' | 'rejected'

export interface ProcessorMetrics {
  /** One event's outcome; `step` is the step that ended the run (`none` when every step continued). */
  event(outcome: Outcome, step: string, reason?: string): void
  copied(count: number): void
  batch(size: number, seconds: number): void
  partitions(count: number): void
  lag(partition: number, records: number): void
}

export function createProcessorMetrics(registry: Registry | undefined): ProcessorMetrics {
  if (registry === undefined) {
    return { event() {}, copied() {}, batch() {}, partitions() {}, lag() {} }
  }
  const registers = [registry]
  const events = new Counter({
    name: 'tributary_processor_events_total',
    help: 'Ingress events processed, by outcome, the step that decided it and the dead-letter reason.',
    labelNames: ['outcome', 'step', 'reason'],
    registers,
  })
  const copies = new Counter({
    name: 'tributary_processor_copies_total',
    help: 'Extra copies published to tenant topics by route rules.',
    registers,
  })
  const batches = new Histogram({
    name: 'tributary_processor_batch_duration_seconds',
    help: 'Time from taking an ingress batch up to its output being durable.',
    buckets: LATENCY_BUCKETS,
    registers,
  })
  const batchEvents = new Counter({
    name: 'tributary_processor_batch_events_total',
    help: 'Ingress records taken up in batches (divide by the batch count for the mean batch size).',
    registers,
  })
  const owned = new Gauge({
    name: 'tributary_processor_partitions',
    help: 'Ingress partitions this process owns in the processors group.',
    registers,
  })
  const lag = new Gauge({
    name: 'tributary_processor_lag_records',
    help: 'Ingress records behind the end of the partition after the last batch, by partition.',
    labelNames: ['partition'],
    registers,
  })
  return {
    event(outcome, step, reason = '') {
      events.inc({ outcome, step, reason })
    },
    copied(count) {
      copies.inc(count)
    },
    batch(size, seconds) {
      batches.observe(seconds)
      batchEvents.inc(size)
    },
    partitions(count) {
      owned.set(count)
    },
    lag(partition, records) {
      lag.set({ partition: String(partition) }, records)
    },
  }
}
