// Prometheus metrics of the application MQTT broker, registered on the process registry
// (core/metrics.ts conventions: tributary_ prefix, base units, _total counters).
import type { Registry } from '../../core/metrics.ts'
import { Counter, Gauge } from '../../core/metrics.ts'

export interface AppMqttMetrics {
  connected(tenant: string): void
  disconnected(tenant: string): void
  delivered(tenant: string): void
  /** A client the broker cut off: `queue-limit`, `drain-timeout`, `credential-expired`. */
  dropped(reason: string): void
  refused(reason: string): void
  /** A command an application published, now on the commands topic. */
  command(tenant: string): void
}

export function createAppMqttMetrics(registry: Registry): AppMqttMetrics {
  const registers = [registry]
  const connections = new Gauge({
    name: 'tributary_app_mqtt_connections',
    help: 'Authenticated application MQTT connections open now, by tenant.',
    labelNames: ['tenant'],
    registers,
  })
  const messages = new Counter({
    name: 'tributary_app_mqtt_messages_out_total',
    help: 'Events handed to application MQTT clients (one per matching client), by tenant.',
    labelNames: ['tenant'],
    registers,
  })
  const dropped = new Counter({
    name: 'tributary_app_mqtt_clients_dropped_total',
    help: 'Application MQTT clients disconnected by the broker (slow reader, expired credential), by reason.',
    labelNames: ['reason'],
    registers,
  })
  const refusals = new Counter({
    name: 'tributary_app_mqtt_refusals_total',
    help: 'Refused application MQTT connections, subscriptions and publishes, by reason.',
    labelNames: ['reason'],
    registers,
  })
  const commands = new Counter({
    name: 'tributary_app_mqtt_commands_total',
    help: 'Commands published by application MQTT clients and produced to the commands topic, by tenant.',
    labelNames: ['tenant'],
    registers,
  })
  return {
    command: (tenant) => commands.inc({ tenant }),
    connected: (tenant) => connections.inc({ tenant }),
    disconnected: (tenant) => connections.dec({ tenant }),
    delivered: (tenant) => messages.inc({ tenant }),
    dropped: (reason) => dropped.inc({ reason }),
    refused: (reason) => refusals.inc({ reason }),
  }
}
