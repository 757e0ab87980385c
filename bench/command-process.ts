// The commands scenario's two sides. Candidate: `tributary start --roles all` on Kafka with one
// MQTT device that answers every request-style command at once; each round trip is one API call
// `POST .../commands/echo?wait=10` → commands topic → router → queue → dispatcher → MQTT → device →
// response (durable on ingress) → the waiting call. Baseline: the same number of request/reply
// exchanges over raw Kafka (produce a request, a bare consumer produces the reply, a second
// consumer reads it), at the same rate.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { MqttClient } from 'mqtt'
import { connectAsync } from 'mqtt'
import { Agent, request } from 'undici'
import type { EventBus } from '../core/bus/bus.ts'
import { BenchError, opsPerSecond, summarize, withTimeout } from './harness.ts'
import { uniqueName } from './records.ts'
import type { TributaryProcess } from './tributary-process.ts'
import { registerDevices, startTributary } from './tributary-process.ts'
import type { LatencySample } from './webhook-runs.ts'

/** The tenant of the command device; other scenarios add their devices to it. */
export const TENANT = 'bench'
const TICK_MS = 5
const DONE_TIMEOUT_MS = 120_000
const READY_TIMEOUT_MS = 60_000
const PAYLOAD = Buffer.alloc(64, 'c')

export interface CommandProduct {
  /** The process, for scenarios that measure more on it (its admin token, API and MQTT port). */
  readonly server: TributaryProcess
  /** API → device → API round trips, `rate` per second for `seconds`. */
  roundTrips(rate: number, seconds: number): Promise<LatencySample>
  close(): Promise<void>
}

/** Calls `one` `rate` times a second for `seconds` without waiting for earlier calls; their latencies. */
async function atRate(rate: number, seconds: number, one: () => Promise<void>) {
  const total = rate * seconds
  const latencies: number[] = []
  const calls: Array<Promise<void>> = []
  const start = performance.now()
  let sent = 0
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000))
    for (; sent < due; sent++) {
      const began = performance.now()
      calls.push(one().then(() => void latencies.push(performance.now() - began)))
    }
    await sleep(TICK_MS)
  }
  const inputPerSec = opsPerSecond(total, performance.now() - start)
  const settled = await withTimeout(
    Promise.allSettled(calls),
    DONE_TIMEOUT_MS,
    'round trips not done in time',
  )
  const failed = settled.filter((s) => s.status === 'rejected')
  if (failed.length > 0)
    throw new BenchError(
      `${failed.length} of ${total} round trips failed: ${String((failed[0] as PromiseRejectedResult).reason)}`,
    )
  return { events: total, inputPerSec, stats: summarize(latencies) }
}

export async function startCommandProduct(
  brokers: readonly string[],
  progress: (message: string) => void = () => undefined,
  /** More TRIBUTARY_* variables for the process. */
  env: Readonly<Record<string, string>> = {},
): Promise<CommandProduct> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tributary-bench-commands-'))
  const agent = new Agent({ connections: 64, keepAliveTimeout: 30_000 })
  let server: TributaryProcess | undefined
  let device: MqttClient | undefined
  try {
    server = await startTributary({
      brokers,
      dataDir,
      topicPrefix: uniqueName('cmd').replaceAll('.', '_'),
      listener: 'mqtt',
      roles: 'all',
      env: {
        TRIBUTARY_HTTP_ENABLED: 'false',
        TRIBUTARY_COAP_ENABLED: 'false',
        TRIBUTARY_APP_MQTT_PORT: '0',
        TRIBUTARY_MQTT_PUBLISH_RATE: '1000000',
        ...env,
      },
    })
    progress(`tributary pid ${server.pid} started; registering a device`)
    const [identity] = await registerDevices(server.api, TENANT, {
      count: 1,
      prefix: 'cmd-device-',
      secret: 'token',
      concurrency: 1,
    })
    device = await connectAsync(`mqtt://127.0.0.1:${server.port}`, {
      clientId: identity!.clientId,
      username: identity!.username,
      password: identity!.password,
      reconnectPeriod: 0,
    })
    const client = device
    client.on('message', (topic, payload) => {
      const match = /^command\/[^/]+\/req\/([^/]+)$/.exec(topic)
      if (match !== null) void client.publishAsync(`command/res/${match[1]}/200`, payload, { qos: 1 })
    })
    await client.subscribeAsync('command/#', { qos: 1 })
  } catch (err) {
    await device?.endAsync(true)
    await server?.stop()
    await rm(dataDir, { recursive: true, force: true })
    throw err
  }
  const running = server
  const client = device
  const url = `${running.apiUrl}/api/v1/tenants/${TENANT}/devices/cmd-device-0/commands/echo?wait=10`
  const call = async (): Promise<void> => {
    const response = await request(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${running.adminToken}`, 'content-type': 'application/octet-stream' },
      body: PAYLOAD,
      dispatcher: agent,
    })
    const body = Buffer.from(await response.body.arrayBuffer())
    if (response.statusCode !== 200 || !body.equals(PAYLOAD))
      throw new BenchError(`command round trip: ${response.statusCode} ${body.toString().slice(0, 200)}`)
  }
  progress('waiting for a first command to come back')
  await withTimeout(call(), READY_TIMEOUT_MS, () => `no first command round trip\n${running.tail()}`)
  return {
    server: running,
    roundTrips: (rate, seconds) => atRate(rate, seconds, call),
    async close() {
      await client.endAsync()
      await running.stop()
      await agent.close()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}

/** Request/reply over raw Kafka: a responder consumes requests and produces replies; the requester reads them. */
export async function kafkaRoundTrips(bus: EventBus, rate: number, seconds: number): Promise<LatencySample> {
  const base = uniqueName('cmd-rr').replaceAll('.', '_')
  const [requests, replies] = [`${base}.requests`, `${base}.replies`]
  await bus.admin.createTopics([
    { name: requests, partitions: 1 },
    { name: replies, partitions: 1 },
  ])
  const waiting = new Map<string, () => void>()
  const responder = await bus.subscribe({
    group: `${base}-responder`,
    topics: [requests],
    from: 'earliest',
    handler: async (batch) => {
      await bus.publish(batch.map((m) => ({ topic: replies, key: m.key, value: m.value })))
    },
  })
  const requester = await bus.subscribe({
    group: `${base}-requester`,
    topics: [replies],
    from: 'earliest',
    handler: async (batch) => {
      for (const m of batch) waiting.get(m.key ?? '')?.()
    },
  })
  try {
    let n = 0
    return await atRate(rate, seconds, async () => {
      const key = String(n++)
      const replied = new Promise<void>((resolve) => waiting.set(key, resolve))
      await bus.publish([{ topic: requests, key, value: PAYLOAD }])
      await replied
      waiting.delete(key)
    })
  } finally {
    await Promise.all([responder.close(), requester.close()])
    await bus.admin.deleteTopics([requests, replies])
  }
}
