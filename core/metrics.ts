// Prometheus metrics: one registry per process with Node's default process metrics, and the
// helpers every module uses to register its own (named by Prometheus conventions: a
// `tributary_` prefix, base units, `_total` for counters).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export type { Registry }
export { Counter, Gauge, Histogram }

export function createMetricsRegistry(): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  return registry
}

/** Latency buckets in seconds, from 0.5 ms to 10 s. */
export const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]
