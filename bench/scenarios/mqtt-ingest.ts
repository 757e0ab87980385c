// QoS 1 ingest through Tributary's MQTT adapter (each PUBACK only after Kafka acknowledged the
// event) against Debian's Mosquitto without persistence, under the same load from bench/mqtt-load.ts:
// same connections, window in flight, message count and payload, interleaved rounds.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Contender, Ratio, Scenario, ScenarioContext, ScenarioResult, Stats } from '../harness.ts'
import { BenchError, formatNumber, formatRatio, formatRatioRange, ratioOf, sideBySide } from '../harness.ts'
import type { MqttIdentity } from '../mqtt-load.ts'
import { closeConnections, openConnections, runQos1Load } from '../mqtt-load.ts'
import type { BenchKafka, ServerProcess } from '../mqtt-servers.ts'
import { machineCpu, processStats } from '../server-process.ts'
import { daemonStatus } from '../../scripts/kafka/daemon.ts'
import {
  benchTopicPrefix,
  openBenchKafka,
  registerDevices,
  startMosquitto,
  startTributary,
} from '../mqtt-servers.ts'

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
const CONNECT_TIMEOUT_MS = 30_000
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
): Promise<IngestSample> {
  const endpoint = { host: '127.0.0.1', port: server.mqttPort }
  const opened = await openConnections(endpoint, identities, {
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
    const recordsBefore = await ingress?.()
    const kafkaCpu = async (): Promise<number> =>
      kafkaPid === undefined ? Number.NaN : (await processStats(kafkaPid)).cpuMs
    const [serverBefore, machineBefore, kafkaBefore] = await Promise.all([
      processStats(server.pid),
      machineCpu(),
      kafkaCpu(),
    ])
    const load = await runQos1Load(opened.connections, {
      messages,
      window: params.window,
      payloadBytes: params.payloadBytes,
      topic: TOPIC,
      timeoutMs: LOAD_TIMEOUT_MS,
    }).catch((err: unknown) => {
      throw new BenchError(`${server.label}: ${(err as Error).message}\n${server.tail()}`)
    })
    const [serverAfter, machineAfter, kafkaAfter] = await Promise.all([
      processStats(server.pid),
      machineCpu(),
      kafkaCpu(),
    ])
    const recordsAfter = await ingress?.()
    const gained =
      recordsBefore === undefined || recordsAfter === undefined ? undefined : recordsAfter - recordsBefore
    // Every acknowledged message must be on Kafka: that is what the PUBACK promises.
    if (gained !== undefined && gained < messages) {
      throw new BenchError(
        `${server.label}: ${messages} messages acknowledged but ingress gained ${gained} records`,
      )
    }
    return {
      messages,
      ms: load.ms,
      ackedPerSec: load.ackedPerSec,
      latency: load.latency,
      connectMs: opened.ms,
      serverCpuUsPerMsg: ((serverAfter.cpuMs - serverBefore.cpuMs) * 1000) / messages,
      clientCpuUsPerMsg: (load.clientCpuMs * 1000) / messages,
      kafkaCpuUsPerMsg: ((kafkaAfter - kafkaBefore) * 1000) / messages,
      clientBusyPercent: (100 * load.clientCpuMs) / load.ms,
      machineBusyPercent:
        (100 * (machineAfter.busyMs - machineBefore.busyMs)) / (machineAfter.totalMs - machineBefore.totalMs),
      ingressRecords: gained,
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

async function run(context: ScenarioContext): Promise<ScenarioResult> {
  if (context.brokers === undefined) {
    throw new BenchError(`needs Kafka, and there is none: ${context.kafkaProblem ?? 'unknown reason'}`)
  }
  const brokers = context.brokers
  const base = context.quick ? QUICK : FULL
  const params: Params = {
    ...base,
    messages: context.records ?? base.messages,
    rounds: context.rounds ?? base.rounds,
  }
  const prefix = benchTopicPrefix('mqtt-ingest')
  const dataDir = await mkdtemp(join(tmpdir(), 'tributary-bench-mqtt-'))
  let kafka: BenchKafka | undefined
  let tributary: ServerProcess | undefined
  let mosquitto: ServerProcess | undefined
  try {
    kafka = await openBenchKafka(brokers)
    const started = await startTributary({
      brokers,
      dataDir,
      topicPrefix: prefix,
      adminToken: randomBytes(24).toString('base64url'),
      // The default per-device rate (100 msg/s) would be the limit measured, not the adapter.
      env: { TRIBUTARY_MQTT_PUBLISH_RATE: '1000000' },
    })
    tributary = started
    context.progress(
      `tributary pid ${started.pid} on mqtt port ${started.mqttPort}; registering ${params.connections} devices with passwords`,
    )
    const identities = await registerDevices(started.api, TENANT, {
      count: params.connections,
      prefix: 'load-',
      secret: 'password',
      concurrency: 4,
    })
    mosquitto = await startMosquitto()
    context.progress(`mosquitto pid ${mosquitto.pid} on port ${mosquitto.mqttPort}`)
    const bench = kafka
    // The broker's CPU is read when it is the local one of scripts/kafka.ts (its pid is recorded).
    const local = await daemonStatus()
    const kafkaPid = local.running && local.state?.brokers === brokers.join(',') ? local.state.pid : undefined
    const contender = (server: ServerProcess, checked: boolean): Contender<IngestSample> => ({
      label: server.label,
      run: (round) =>
        runOnce(
          server,
          identities,
          round < 0 ? Math.min(params.warmupMessages, params.messages) : params.messages,
          params,
          checked ? () => bench.ingressRecords(prefix) : undefined,
          checked ? kafkaPid : undefined,
        ),
    })
    const result = await sideBySide({
      candidate: contender(started, true),
      baseline: contender(mosquitto, false),
      rounds: params.rounds,
      warmupRounds: 1,
      onRun: (label, round, sample) =>
        context.progress(
          `${round < 0 ? 'warmup' : `round ${round + 1}/${params.rounds}`} ${label}: ${describe(sample)}`,
        ),
    })
    const ratios = {
      ackedPerSec: ratioOf(result, (s) => s.ackedPerSec),
      latencyP50Ms: ratioOf(result, (s) => s.latency.p50),
      latencyP99Ms: ratioOf(result, (s) => s.latency.p99),
      serverCpuUsPerMsg: ratioOf(result, (s) => s.serverCpuUsPerMsg),
      clientCpuUsPerMsg: ratioOf(result, (s) => s.clientCpuUsPerMsg),
      kafkaCpuUsPerMsg: ratioOf(result, (s) => s.kafkaCpuUsPerMsg),
      clientBusyPercent: ratioOf(result, (s) => s.clientBusyPercent),
      machineBusyPercent: ratioOf(result, (s) => s.machineBusyPercent),
      connectMs: ratioOf(result, (s) => s.connectMs),
    }
    const row = (label: string, r: Ratio): string[] => [
      label,
      formatNumber(r.candidate.median),
      formatNumber(r.baseline.median),
      formatRatio(r.ratio),
      formatRatioRange(r),
    ]
    const clientBound = ratios.clientBusyPercent.baseline.median >= 85
    return {
      table: {
        title:
          `mqtt-ingest: ${formatNumber(params.messages)} QoS 1 messages of ${params.payloadBytes} B over ` +
          `${params.connections} connections × ${params.window} in flight, median of ${params.rounds} interleaved rounds`,
        columns: ['metric', 'tributary', 'mosquitto', 'ratio t/m', 'per-round ratios'],
        rows: [
          row('acked msg/s (PUBLISH → PUBACK)', ratios.ackedPerSec),
          row('ack latency p50 ms', ratios.latencyP50Ms),
          row('ack latency p99 ms', ratios.latencyP99Ms),
          row('server CPU µs per message', ratios.serverCpuUsPerMsg),
          row('Kafka broker CPU µs per message', ratios.kafkaCpuUsPerMsg),
          row('load generator CPU µs per message', ratios.clientCpuUsPerMsg),
          row('load generator busy % of one core', ratios.clientBusyPercent),
          row('machine busy % (all CPUs, Kafka included)', ratios.machineBusyPercent),
          row(`connect ms (${params.connections} CONNECT → CONNACK, 50 at once)`, ratios.connectMs),
        ],
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
  } finally {
    await Promise.allSettled([tributary?.stop(), mosquitto?.stop()])
    await kafka
      ?.deleteTopics(prefix)
      .catch((err: unknown) => context.progress(`topic cleanup failed: ${String(err)}`))
    await kafka?.close()
    await rm(dataDir, { recursive: true, force: true })
  }
}

export const mqttIngest: Scenario = {
  name: 'mqtt-ingest',
  description:
    'MQTT QoS 1 ingest: Tributary adapter (to Kafka) vs Mosquitto (no persistence); msg/s, ack p50/p99, CPU per message',
  needsKafka: true,
  run,
}
