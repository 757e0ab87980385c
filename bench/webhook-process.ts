// The webhooks scenario through a whole product: `tributary start --roles all` on Kafka, a device
// publishing MQTT QoS 1 at a fixed rate, and two ways out measured one after the other: a
// subscription made through the API delivering each event to the bench's receiver (device publish →
// webhook received), then an application's WebSocket on the event stream (publish → message received).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { MqttClient } from 'mqtt'
import { connectAsync } from 'mqtt'
import { BenchError, opsPerSecond, summarize, withTimeout } from './harness.ts'
import { uniqueName } from './records.ts'
import type { TributaryProcess } from './tributary-process.ts'
import { registerDevices, startTributary } from './tributary-process.ts'
import type { Receiver } from './webhook-receiver.ts'
import { stampedBody } from './webhook-receiver.ts'
import type { LatencySample } from './webhook-runs.ts'
import { WEBHOOK_TENANT } from './webhook-runs.ts'
import type { EventSocket } from './websocket-client.ts'
import { openEventSocket } from './websocket-client.ts'

const CHANNEL = 'sensors/temperature'
const TELEMETRY = 'io.tributary.telemetry.v1'
const TICK_MS = 5
const DONE_TIMEOUT_MS = 120_000
const READY_TIMEOUT_MS = 60_000

export interface WebhookProduct {
  /** Device publish (QoS 1) → webhook received, `rate` events/s for `seconds`. */
  webhookLatency(rate: number, seconds: number): Promise<LatencySample>
  /**
   * Deletes the subscription, so that the process delivers no more webhooks, and opens the event
   * socket (a reader API token, telemetry only), once a first event has come through it.
   */
  openWebSocket(): Promise<void>
  /** Device publish (QoS 1) → WebSocket message received, after openWebSocket(). */
  websocketLatency(rate: number, seconds: number): Promise<LatencySample>
  close(): Promise<void>
}

/**
 * Starts the process, registers one device and a subscription (telemetry only) to `receiver`,
 * connects the device, and waits until a first event has gone all the way through.
 */
export async function startWebhookProduct(
  brokers: readonly string[],
  receiver: Receiver,
  progress: (message: string) => void = () => undefined,
): Promise<WebhookProduct> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tributary-bench-webhook-process-'))
  let server: TributaryProcess | undefined
  let device: MqttClient | undefined
  let subscription: string
  try {
    server = await startTributary({
      brokers,
      dataDir,
      topicPrefix: uniqueName('whp').replaceAll('.', '_'),
      listener: 'mqtt',
      roles: 'all',
      env: {
        TRIBUTARY_WEBHOOK_ALLOW_PRIVATE: 'true',
        TRIBUTARY_HTTP_ENABLED: 'false',
        TRIBUTARY_COAP_ENABLED: 'false',
        TRIBUTARY_APP_MQTT_PORT: '0',
        // One device publishes the whole rate: the per-device limit (100/s by default) must not refuse it.
        TRIBUTARY_MQTT_PUBLISH_RATE: '1000000',
      },
    })
    progress(`tributary pid ${server.pid} started; registering a device and a subscription`)
    const [identity] = await registerDevices(server.api, WEBHOOK_TENANT, {
      count: 1,
      prefix: 'webhook-device-',
      secret: 'token',
      concurrency: 1,
    })
    const created = await server.api.request<{ subscription: { id: string } }>(
      'POST',
      `/tenants/${WEBHOOK_TENANT}/subscriptions`,
      { body: { url: receiver.url, filter: { types: [TELEMETRY] } } },
    )
    subscription = created.body.subscription.id
    progress('connecting the device')
    device = await connectAsync(`mqtt://127.0.0.1:${server.port}`, {
      clientId: identity!.clientId,
      username: identity!.username,
      password: identity!.password,
      reconnectPeriod: 0,
    })
    progress('waiting for a first event to come through')
    // Until the delivery has joined its group, a first event may wait: one probe goes through first.
    const probe = receiver.expect(1, [])
    const first = device.publishAsync(CHANNEL, stampedBody(performance.now(), -1), { qos: 1 })
    await withTimeout(
      Promise.all([first, probe]),
      READY_TIMEOUT_MS,
      () => `no PUBACK or no webhook for a first event\n${server!.tail()}`,
    )
  } catch (err) {
    await device?.endAsync(true)
    await server?.stop()
    await rm(dataDir, { recursive: true, force: true })
    throw err
  }
  const running = server
  const client = device
  let socket: EventSocket | undefined

  /** Publishes `rate` events/s for `seconds`, each stamped, and waits for every PUBACK. */
  async function publishAtRate(rate: number, seconds: number) {
    const total = rate * seconds
    const acks: Array<Promise<unknown>> = []
    const start = performance.now()
    let sent = 0
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000))
      for (; sent < due; sent++)
        acks.push(client.publishAsync(CHANNEL, stampedBody(performance.now(), sent), { qos: 1 }))
      await sleep(TICK_MS)
    }
    const inputPerSec = opsPerSecond(total, performance.now() - start)
    // A refused device is disconnected and its pending publishes never settle: fail rather than wait.
    const closed = Promise.withResolvers<void>()
    const onClose = () => closed.resolve()
    client.once('close', onClose)
    try {
      const settled = await withTimeout(
        Promise.race([Promise.allSettled(acks), closed.promise]),
        DONE_TIMEOUT_MS,
        'mqtt: QoS 1 publishes not acknowledged in time',
      )
      if (settled === undefined) throw new BenchError(`mqtt: the device was disconnected\n${running.tail()}`)
      const failed = settled.filter((a) => a.status === 'rejected').length
      if (failed > 0) throw new BenchError(`mqtt: ${failed} of ${total} QoS 1 publishes not acknowledged`)
    } finally {
      client.off('close', onClose)
    }
    return { total, inputPerSec }
  }

  return {
    async webhookLatency(rate, seconds) {
      const latencies: number[] = []
      const received = receiver.expect(rate * seconds, latencies)
      const { total, inputPerSec } = await publishAtRate(rate, seconds)
      await withTimeout(received, DONE_TIMEOUT_MS, () => `not every webhook in time\n${running.tail()}`)
      return { events: total, inputPerSec, stats: summarize(latencies) }
    },
    async openWebSocket() {
      await running.api.request('DELETE', `/tenants/${WEBHOOK_TENANT}/subscriptions/${subscription}`)
      // What an application would hold: a reader API token of the tenant, not the admin token.
      const token = await running.api.request<{ secret: string }>(
        'POST',
        `/tenants/${WEBHOOK_TENANT}/tokens`,
        {
          body: { name: 'bench websocket', role: 'reader' },
        },
      )
      socket = await openEventSocket(running.apiUrl, WEBHOOK_TENANT, token.body.secret, { type: TELEMETRY })
      // The socket subscribes before it accepts the upgrade: a probe published now must arrive.
      const probe = socket.expect(1, [])
      const first = client.publishAsync(CHANNEL, stampedBody(performance.now(), -1), { qos: 1 })
      await withTimeout(
        Promise.race([Promise.all([first, probe]), socket.closed]),
        READY_TIMEOUT_MS,
        () => `no PUBACK or no WebSocket message for a first event\n${running.tail()}`,
      )
    },
    async websocketLatency(rate, seconds) {
      if (socket === undefined) throw new BenchError('websocket: openWebSocket() first')
      const latencies: number[] = []
      const received = socket.expect(rate * seconds, latencies)
      const { total, inputPerSec } = await publishAtRate(rate, seconds)
      await withTimeout(
        Promise.race([received, socket.closed]),
        DONE_TIMEOUT_MS,
        () => `not every WebSocket message in time\n${running.tail()}`,
      )
      return { events: total, inputPerSec, stats: summarize(latencies) }
    },
    async close() {
      await socket?.close()
      await client.endAsync()
      await running.stop()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}
