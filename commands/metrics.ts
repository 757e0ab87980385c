// Prometheus metrics of the command back-channel (core/metrics.ts conventions).
import type { Registry } from '../core/metrics.ts'
import { Counter, Gauge, Histogram, LATENCY_BUCKETS } from '../core/metrics.ts'
import type { CommandStatus } from '../core/events/commands.ts'

export interface CommandMetrics {
  /** A status event written, by status, protocol and reason (empty for accepted and delivered). */
  status(status: CommandStatus, protocol: string, reason: string | undefined): void
  /** Time from the command's sending to its delivery. */
  delivered(seconds: number): void
  /** A command event that could not be read (dead-lettered). */
  invalid(): void
  /** Devices with a sink attached on this instance. */
  attached(devices: number): void
  /** Status events that could not be written (the bus failed); each is also logged. */
  statusLost(count: number): void
}

export function createCommandMetrics(registry: Registry | undefined): CommandMetrics {
  if (registry === undefined) {
    return { status() {}, delivered() {}, invalid() {}, attached() {}, statusLost() {} }
  }
  const registers = [registry]
  const statuses = new Counter({
    name: 'tributary_command_status_total',
    help: 'Command status events written, by status, delivery protocol (or origin) and reason.',
    labelNames: ['status', 'protocol', 'reason'],
    registers,
  })
  const latency = new Histogram({
    name: 'tributary_command_delivery_seconds',
    help: 'Time from sending a command to handing it to its device.',
    buckets: LATENCY_BUCKETS,
    registers,
  })
  const invalid = new Counter({
    name: 'tributary_command_invalid_total',
    help: 'Records on the commands topic that were not a valid command (dead-lettered).',
    registers,
  })
  const attached = new Gauge({
    name: 'tributary_command_attached_devices',
    help: 'Devices that can take commands through this instance now (sessions, polls, observations).',
    registers,
  })
  const lost = new Counter({
    name: 'tributary_command_status_failed_total',
    help: 'Command status events that could not be written to the bus.',
    registers,
  })
  return {
    status: (status, protocol, reason) => statuses.inc({ status, protocol, reason: reason ?? '' }),
    delivered: (seconds) => latency.observe(seconds),
    invalid: () => invalid.inc(),
    attached: (devices) => attached.set(devices),
    statusLost: (count) => lost.inc(count),
  }
}
