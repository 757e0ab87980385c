// Prometheus metrics of the device HTTP listener (core/metrics.ts conventions: tributary_ prefix,
// base units, _total counters). `route` is `ingest` (POST /v1/...), `poll` (a request that waits for
// a command: `?ct=` or GET /v1/command), `ttn` (POST /ttn/v3) or `other`.
import type { Registry } from '../../core/metrics.ts'
import { Counter, Gauge, Histogram, LATENCY_BUCKETS } from '../../core/metrics.ts'

export type HttpRoute = 'ingest' | 'poll' | 'ttn' | 'files' | 'other'

export interface HttpMetrics {
  request(route: HttpRoute, status: number, seconds: number): void
}

/** `polls` reads how many requests wait for a command now. */
export function createHttpMetrics(registry: Registry, polls: () => number): HttpMetrics {
  const registers = [registry]
  new Gauge({
    name: 'tributary_http_command_polls',
    help: 'Device HTTP requests waiting for a command now (?ct= and GET /v1/command).',
    registers,
    collect() {
      this.set(polls())
    },
  })
  const requests = new Counter({
    name: 'tributary_http_requests_total',
    help: 'Requests answered by the device HTTP listener, by route and status.',
    labelNames: ['route', 'status'],
    registers,
  })
  const duration = new Histogram({
    name: 'tributary_http_request_duration_seconds',
    help: 'Time from receiving a request to answering it (202 only after the bus made the event durable).',
    labelNames: ['route'],
    buckets: LATENCY_BUCKETS,
    registers,
  })
  return {
    request(route, status, seconds) {
      requests.inc({ route, status: String(status) })
      duration.observe({ route }, seconds)
    },
  }
}
