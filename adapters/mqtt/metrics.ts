// Prometheus metrics of the MQTT adapter, registered on the process registry (core/metrics.ts
// conventions: tributary_ prefix, base units, _total counters).
import type { Registry } from '../../core/metrics.ts'
import { Counter, Gauge, Histogram, LATENCY_BUCKETS } from '../../core/metrics.ts'

export interface MqttMetrics {
  connected(listener: string, tenant: string): void
  disconnected(listener: string, tenant: string): void
  message(tenant: string, bytes: number): void
  refused(reason: string): void
  /** Seconds from receiving a QoS 1/2 PUBLISH to letting its acknowledgement go. */
  ackDuration(seconds: number): void
}

export function createMqttMetrics(registry: Registry): MqttMetrics {
  const registers = [registry]
  const connections = new Gauge({
    name: 'tributary_mqtt_connections',
    help: 'Authenticated MQTT connections open now, by listener and tenant.',
    labelNames: ['listener', 'tenant'],
    registers,
  })
  const messages = new Counter({
    name: 'tributary_mqtt_messages_in_total',
    help: 'PUBLISH messages accepted onto the ingress topic, by tenant.',
    labelNames: ['tenant'],
    registers,
  })
  const bytes = new Counter({
    name: 'tributary_mqtt_bytes_in_total',
    help: 'Payload bytes of accepted PUBLISH messages, by tenant.',
    labelNames: ['tenant'],
    registers,
  })
  const refusals = new Counter({
    name: 'tributary_mqtt_refusals_total',
    help: 'Refused connections, messages, subscriptions and handshakes, by reason.',
    labelNames: ['reason'],
    registers,
  })
  const ack = new Histogram({
    name: 'tributary_mqtt_ack_duration_seconds',
    help: 'Time from receiving a QoS 1 or 2 PUBLISH to releasing its acknowledgement (the bus made it durable).',
    buckets: LATENCY_BUCKETS,
    registers,
  })
  return {
    connected: (listener, tenant) => connections.inc({ listener, tenant }),
    disconnected: (listener, tenant) => connections.dec({ listener, tenant }),
    message(tenant, n) {
      messages.inc({ tenant })
      bytes.inc({ tenant }, n)
    },
    refused: (reason) => refusals.inc({ reason }),
    ackDuration: (seconds) => ack.observe(seconds),
  }
}
