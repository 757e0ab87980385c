// Prometheus metrics of the CoAP adapter, registered on the process registry (core/metrics.ts
// conventions: tributary_ prefix, base units, _total counters).
import type { Registry } from '../../core/metrics.ts'
import { Counter, Histogram, LATENCY_BUCKETS } from '../../core/metrics.ts'

export interface CoapMetrics {
  /** A request got its final response `code` (2.31 Continue of a block-wise transfer is not final). */
  answered(code: string, seconds: number): void
}

export function createCoapMetrics(registry: Registry): CoapMetrics {
  const registers = [registry]
  const requests = new Counter({
    name: 'tributary_coap_requests_total',
    help: 'CoAP requests answered, by response code (2.04 accepted onto the ingress topic).',
    labelNames: ['code'],
    registers,
  })
  const duration = new Histogram({
    name: 'tributary_coap_request_duration_seconds',
    help: 'Time from a complete CoAP request (the last block of a block-wise one) to its response.',
    buckets: LATENCY_BUCKETS,
    registers,
  })
  return {
    answered(code, seconds) {
      requests.inc({ code })
      duration.observe(seconds)
    },
  }
}
