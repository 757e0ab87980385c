// Webhook delivery metrics. Labelled by tenant, never by subscription, so the series count stays
// bounded by the number of tenants; per-subscription detail is in the recent errors.
import type { Registry } from '../../core/metrics.ts'
import { Counter, Histogram, LATENCY_BUCKETS } from '../../core/metrics.ts'
import type { SendOutcome } from './ports.ts'

export interface WebhookMetrics {
  /** One HTTP attempt and what it came to. */
  attempt(tenant: string, outcome: SendOutcome['kind'], seconds: number): void
  delivered(tenant: string, events: number): void
  deadLettered(tenant: string, reason: string, events: number): void
  /** Records that were not CloudEvents, skipped. */
  skipped(tenant: string): void
}

export const noMetrics: WebhookMetrics = {
  attempt: () => undefined,
  delivered: () => undefined,
  deadLettered: () => undefined,
  skipped: () => undefined,
}

export function createWebhookMetrics(registry: Registry): WebhookMetrics {
  const registers = [registry]
  const attempts = new Counter({
    name: 'tributary_webhook_attempts_total',
    help: 'HTTP requests to webhook endpoints, by outcome (delivered, retry, gone, rejected).',
    labelNames: ['tenant', 'outcome'],
    registers,
  })
  const duration = new Histogram({
    name: 'tributary_webhook_request_duration_seconds',
    help: 'Time from sending a webhook request to its answer (or failure).',
    labelNames: ['tenant'],
    buckets: LATENCY_BUCKETS,
    registers,
  })
  const delivered = new Counter({
    name: 'tributary_webhook_delivered_events_total',
    help: 'Events an endpoint accepted with a 2xx.',
    labelNames: ['tenant'],
    registers,
  })
  const deadLettered = new Counter({
    name: 'tributary_webhook_dead_lettered_events_total',
    help: 'Events given up on and handed to the subscription dead letter, by reason.',
    labelNames: ['tenant', 'reason'],
    registers,
  })
  const skipped = new Counter({
    name: 'tributary_webhook_skipped_records_total',
    help: 'Records of a tenant topic that were not CloudEvents and were skipped.',
    labelNames: ['tenant'],
    registers,
  })
  return {
    attempt(tenant, outcome, seconds) {
      attempts.inc({ tenant, outcome })
      duration.observe({ tenant }, seconds)
    },
    delivered: (tenant, events) => delivered.inc({ tenant }, events),
    deadLettered: (tenant, reason, events) => deadLettered.inc({ tenant, reason }, events),
    skipped: (tenant) => skipped.inc({ tenant }),
  }
}
