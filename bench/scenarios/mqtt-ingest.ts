// QoS 1 ingest through Tributary's MQTT adapter (each PUBACK only after Kafka acknowledged the
// event) against Debian's Mosquitto without persistence, under the same load from bench/mqtt-load.ts:
// same connections, window in flight, message count and payload, interleaved rounds.
import { daemonStatus } from '../../scripts/kafka/daemon.ts'
import type { Contender, Scenario, ScenarioContext, ScenarioResult, Stats } from '../harness.ts'
import {
  BenchError,
  compareMetrics,
  formatNumber,
  reportRuns,
  scenarioParams,
  sideBySide,
} from '../harness.ts'
import { measureIngestRun } from '../ingest-run.ts'
import type { MqttIdentity } from '../mqtt-load.ts'
import { closeConnections, openConnections, runQos1Load } from '../mqtt-load.ts'
import { startMosquitto, startMqttTributary } from '../mqtt-servers.ts'
import type { ServerProcess } from '../server-process.ts'
import { withServerBench } from '../server-bench.ts'
import { registerDevices } from '../tributary-process.ts'

interface Params {
  readonly connections: number
  /** PUBLISHes in flight per connection. */
  readonly window: number
  /** Messages per timed run, over all connections. */
  readonly messages: number
  readonly warmupMessages: number
  readonly rounds: number
  readonly payloadBytes: number
}

const FULL: Params = {
  connections: 100,
  window: 16,
  messages: 100_000,
  warmupMessages: 20_000,
  rounds: 3,
  payloadBytes: 256,
}
const QUICK: Params = { ...FULL, connections: 50, messages: 20_000, warmupMessages: 5_000, rounds: 2 }

const TENANT = 'bench'
const TOPIC = 'bench/telemetry'
const KEEPALIVE_SECONDS = 300
// The warmup's connects each verify a password (scrypt): on a shared, loaded machine that takes a while.
const CONNECT_TIMEOUT_MS = 120_000
const LOAD_TIMEOUT_MS = 180_000

export interface IngestSample {
  readonly messages: number
  readonly ms: number
  readonly ackedPerSec: number
  readonly latency: Stats
  /** N connections: first TCP connect → last CONNACK. */
  readonly connectMs: number
  /** CPU time of the server process per acknowledged message, µs. */
  readonly serverCpuUsPerMsg: number
  /** CPU time of the load generator (this process) per acknowledged message, µs. */
  readonly clientCpuUsPerMsg: number
  /** Share of the load generator's one thread it kept busy, %. */
  readonly clientBusyPercent: number
  /** Busy share of every CPU of the machine during the run (Kafka included), %. */
  readonly machineBusyPercent: number
  /** CPU time of the local Kafka broker per message, µs (tributary only, when its pid is known). */
  readonly kafkaCpuUsPerMsg: number
  /** Records the ingress topic gained (tributary only; telemetry plus connection events). */
  readonly ingressRecords?: number | undefined
}

async function runOnce(
  server: ServerProcess,
  identities: readonly MqttIdentity[],
  messages: number,
  params: Params,
  ingress: (() => Promise<number>) | undefined,
  kafkaPid: number | undefined,
  protocolVersion: 4 | 5,
): Promise<IngestSample> {
  const endpoint = { host: '127.0.0.1', port: server.port }
  const opened = await openConnections(endpoint, identities, {
    protocolVersion,
    keepaliveSeconds: KEEPALIVE_SECONDS,
    timeoutMs: CONNECT_TIMEOUT_MS,
    concurrency: 50,
  })
  try {
    if (opened.failure !== undefined) {
      throw new BenchError(
        `${server.label}: ${opened.failure.opened} of ${identities.length} connections opened: ${opened.failure.reason}\n${server.tail()}`,
      )
    }
    const measured = await measureIngestRun(server, {
      ops: messages,
      records: ingress,
      kafkaPid,
      load: () =>
        runQos1Load(opened.connections, {
          messages,
          window: params.window,
          payloadBytes: params.payloadBytes,
          topic: TOPIC,
          timeoutMs: LOAD_TIMEOUT_MS,
          protocolVersion,
        }),
    })
    const { load } = measured
    return {
      messages,
      ms: load.ms,
      ackedPerSec: load.ackedPerSec,
      latency: load.latency,
      connectMs: opened.ms,
      serverCpuUsPerMsg: measured.serverCpuUsPerOp,
      clientCpuUsPerMsg: (load.clientCpuMs * 1000) / messages,
      kafkaCpuUsPerMsg: measured.kafkaCpuUsPerOp,
      clientBusyPercent: (100 * load.clientCpuMs) / load.ms,
      machineBusyPercent: measured.machineBusyPercent,
      ingressRecords: measured.recordsGained,
    }
  } finally {
    await closeConnections(opened.connections)
  }
}

function describe(s: IngestSample): string {
  return (
    `${formatNumber(s.ackedPerSec)} msg/s, ack p50 ${formatNumber(s.latency.p50)} ms p99 ` +
    `${formatNumber(s.latency.p99)} ms, server ${formatNumber(s.serverCpuUsPerMsg)} µs/msg, ` +
    `client busy ${formatNumber(s.clientBusyPercent)} %, machine busy ${formatNumber(s.machineBusyPercent)} %`
  )
}

function run(context: ScenarioContext, protocolVersion: 4 | 5): Promise<ScenarioResult> {
  const params = scenarioParams(context, { full: FULL, quick: QUICK }, 'messages')
  return withServerBench(context, protocolVersion === 5 ? 'mqtt5-ingest' : 'mqtt-ingest', async (bench) => {
    const tributary = bench.own(
      await startMqttTributary({
        ...bench.tributaryOptions,
        // The default per-device rate (100 msg/s) would be the limit measured, not the adapter.
        env: { TRIBUTARY_MQTT_PUBLISH_RATE: '1000000' },
      }),
    )
    context.progress(
      `tributary pid ${tributary.pid} on mqtt port ${tributary.port}; registering ${params.connections} devices with passwords`,
    )
    const identities = await registerDevices(tributary.api, TENANT, {
      count: params.connections,
      prefix: 'load-',
      secret: 'password',
      concurrency: 4,
    })
    const mosquitto = bench.own(await startMosquitto())
    context.progress(`mosquitto pid ${mosquitto.pid} on port ${mosquitto.port}`)
    // The broker's CPU is read when it is the local one of scripts/kafka.ts (its pid is recorded).
    const local = await daemonStatus()
    const kafkaPid =
      local.running && local.state?.brokers === bench.brokers.join(',') ? local.state.pid : undefined
    const contender = (server: ServerProcess, checked: boolean): Contender<IngestSample> => ({
      label: server.label,
      run: (round) =>
        runOnce(
          server,
          identities,
          round < 0 ? Math.min(params.warmupMessages, params.messages) : params.messages,
          params,
          checked ? () => bench.kafka.ingressRecords(bench.topicPrefix) : undefined,
          checked ? kafkaPid : undefined,
          protocolVersion,
        ),
    })
    const result = await sideBySide({
      candidate: contender(tributary, true),
      baseline: contender(mosquitto, false),
      rounds: params.rounds,
      warmupRounds: 1,
      onRun: reportRuns(context, params.rounds, describe),
    })
    const { ratios, rows } = compareMetrics(result, {
      ackedPerSec: { label: 'acked msg/s (PUBLISH → PUBACK)', of: (s) => s.ackedPerSec },
      latencyP50Ms: { label: 'ack latency p50 ms', of: (s) => s.latency.p50 },
      latencyP99Ms: { label: 'ack latency p99 ms', of: (s) => s.latency.p99 },
      serverCpuUsPerMsg: { label: 'server CPU µs per message', of: (s) => s.serverCpuUsPerMsg },
      kafkaCpuUsPerMsg: { label: 'Kafka broker CPU µs per message', of: (s) => s.kafkaCpuUsPerMsg },
      clientCpuUsPerMsg: { label: 'load generator CPU µs per message', of: (s) => s.clientCpuUsPerMsg },
      clientBusyPercent: { label: 'load generator busy % of one core', of: (s) => s.clientBusyPercent },
      machineBusyPercent: {
        label: 'machine busy % (all CPUs, Kafka included)',
        of: (s) => s.machineBusyPercent,
      },
      connectMs: {
        label: `connect ms (${params.connections} CONNECT → CONNACK, 50 at once)`,
        of: (s) => s.connectMs,
      },
    })
    const clientBound = ratios.clientBusyPercent.baseline.median >= 85
    return {
      table: {
        title:
          `${protocolVersion === 5 ? 'mqtt5-ingest: MQTT 5' : 'mqtt-ingest: MQTT 3.1.1'}, ${formatNumber(params.messages)} QoS 1 messages of ${params.payloadBytes} B over ` +
          `${params.connections} connections × ${params.window} in flight, median of ${params.rounds} interleaved rounds`,
        columns: ['metric', 'tributary', 'mosquitto', 'ratio t/m', 'per-round ratios'],
        rows,
        notes: [
          'tributary: `tributary start --roles adapters,api` on Kafka (PUBACK after the broker acknowledged); ' +
            'mosquitto: no persistence, no subscribers.',
          'ratio = median(tributary) / median(mosquitto); for msg/s higher is better, for ms and µs lower is better.',
          `records the ingress topic gained per tributary round: ${result.candidate.samples.map((s) => formatNumber(s.ingressRecords ?? Number.NaN)).join(', ')} ` +
            `(each round is checked to hold at least every acknowledged message).`,
          ...(clientBound
            ? [
                `the load generator kept its core ${formatNumber(ratios.clientBusyPercent.baseline.median)} % busy ` +
                  'against Mosquitto: its msg/s there is a floor set by the client on this machine.',
              ]
            : []),
        ],
      },
      data: { params, order: result.order, ratios, samples: result },
    }
  })
}

export const mqttIngest: Scenario = {
  name: 'mqtt-ingest',
  description:
    'MQTT 3.1.1 QoS 1 ingest: Tributary adapter on aedes (to Kafka) vs Mosquitto (no persistence); msg/s, ack p50/p99, CPU per message',
  needsKafka: true,
  run: (context) => run(context, 4),
}

export const mqtt5Ingest: Scenario = {
  name: 'mqtt5-ingest',
  description:
    'MQTT 5 QoS 1 ingest: Tributary adapter on its mqtt-packet endpoint (to Kafka) vs Mosquitto (no persistence)',
  needsKafka: true,
  run: (context) => run(context, 5),
}
