// Confirmable CoAP POSTs through Tributary's CoAP adapter (each 2.04 only after Kafka acknowledged
// the event) against a bare `coap` server whose handler publishes the same record through the same
// bus code, under the same load from bench/coap-load.ts: same window, sockets, requests and
// payload, interleaved rounds.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { CoapLoadResult } from '../coap-load.ts'
import { runCoapLoad } from '../coap-load.ts'
import type { CoapServer } from '../coap-servers.ts'
import { startBaseline, startTributaryCoap } from '../coap-servers.ts'
import type { Contender, Ratio, Scenario, ScenarioContext, ScenarioResult, Stats } from '../harness.ts'
import { BenchError, formatNumber, formatRatio, formatRatioRange, ratioOf, sideBySide } from '../harness.ts'
import type { BenchKafka } from '../mqtt-servers.ts'
import {
  benchTopicPrefix,
  machineCpu,
  openBenchKafka,
  processStats,
  registerDevices,
} from '../mqtt-servers.ts'

interface Params {
  readonly requests: number
  readonly warmupRequests: number
  /** Requests in flight at once. */
  readonly window: number
  readonly sockets: number
  readonly devices: number
  readonly rounds: number
  readonly payloadBytes: number
}

const FULL: Params = {
  requests: 50_000,
  warmupRequests: 10_000,
  window: 64,
  sockets: 4,
  devices: 64,
  rounds: 3,
  payloadBytes: 256,
}
const QUICK: Params = { ...FULL, requests: 10_000, warmupRequests: 2_000, devices: 16, rounds: 2 }

const TENANT = 'bench'
const PATH = ['v1', 'bench', 'telemetry']
const LOAD_TIMEOUT_MS = 180_000

interface IngestSample {
  readonly requests: number
  readonly ms: number
  readonly okPerSec: number
  readonly latency: Stats
  readonly codes: Record<string, number>
  readonly retransmissions: number
  readonly separate: number
  readonly serverCpuUsPerReq: number
  readonly clientCpuUsPerReq: number
  readonly clientBusyPercent: number
  readonly machineBusyPercent: number
  readonly recordsGained: number
}

async function runOnce(
  server: CoapServer,
  requests: number,
  params: Params,
  credentials: readonly string[],
  records: () => Promise<number>,
): Promise<IngestSample> {
  const recordsBefore = await records()
  const [serverBefore, machineBefore] = await Promise.all([processStats(server.pid), machineCpu()])
  let load: CoapLoadResult
  try {
    load = await runCoapLoad(
      { host: '127.0.0.1', port: server.coapPort },
      {
        requests,
        window: params.window,
        sockets: params.sockets,
        payloadBytes: params.payloadBytes,
        path: PATH,
        credentials,
        timeoutMs: LOAD_TIMEOUT_MS,
      },
    )
  } catch (err) {
    throw new BenchError(`${server.label}: ${(err as Error).message}\n${server.tail()}`)
  }
  const [serverAfter, machineAfter] = await Promise.all([processStats(server.pid), machineCpu()])
  const recordsGained = (await records()) - recordsBefore
  const ok = load.codes['2.04'] ?? 0
  if (ok !== requests) {
    throw new BenchError(
      `${server.label}: ${ok} of ${requests} requests answered 2.04 (${JSON.stringify(load.codes)})`,
    )
  }
  // Every 2.04 promises a durable record: count them on the broker.
  if (recordsGained < ok) {
    throw new BenchError(
      `${server.label}: ${ok} requests answered 2.04 but the topic gained ${recordsGained} records`,
    )
  }
  return {
    requests,
    ms: load.ms,
    okPerSec: load.okPerSec,
    latency: load.latency,
    codes: load.codes,
    retransmissions: load.retransmissions,
    separate: load.separate,
    serverCpuUsPerReq: ((serverAfter.cpuMs - serverBefore.cpuMs) * 1000) / requests,
    clientCpuUsPerReq: (load.clientCpuMs * 1000) / requests,
    clientBusyPercent: (100 * load.clientCpuMs) / load.ms,
    machineBusyPercent:
      (100 * (machineAfter.busyMs - machineBefore.busyMs)) / (machineAfter.totalMs - machineBefore.totalMs),
    recordsGained,
  }
}

const describe = (s: IngestSample): string =>
  `${formatNumber(s.okPerSec)} req/s, p50 ${formatNumber(s.latency.p50)} ms p99 ${formatNumber(s.latency.p99)} ms, ` +
  `server ${formatNumber(s.serverCpuUsPerReq)} µs/req, client busy ${formatNumber(s.clientBusyPercent)} %, ` +
  `machine busy ${formatNumber(s.machineBusyPercent)} %, retransmissions ${s.retransmissions}, separate ${s.separate}`

async function run(context: ScenarioContext): Promise<ScenarioResult> {
  if (context.brokers === undefined) {
    throw new BenchError(`needs Kafka, and there is none: ${context.kafkaProblem ?? 'unknown reason'}`)
  }
  const brokers = context.brokers
  const base = context.quick ? QUICK : FULL
  const params: Params = {
    ...base,
    requests: context.records ?? base.requests,
    rounds: context.rounds ?? base.rounds,
  }
  const prefix = benchTopicPrefix('coap-ingest')
  const basePrefix = `${prefix}-base`
  const dataDir = await mkdtemp(join(tmpdir(), 'tributary-bench-coap-'))
  let kafka: BenchKafka | undefined
  let tributary: CoapServer | undefined
  let baseline: CoapServer | undefined
  try {
    kafka = await openBenchKafka(brokers)
    const started = await startTributaryCoap({
      brokers,
      dataDir,
      topicPrefix: prefix,
      adminToken: randomBytes(24).toString('base64url'),
      // The default per-device rate (100 msg/s) would be the limit measured, not the adapter; the
      // other device listeners are off so that the process's CPU is the CoAP adapter's.
      env: {
        TRIBUTARY_MQTT_PUBLISH_RATE: '1000000',
        TRIBUTARY_MQTT_ENABLED: 'false',
        TRIBUTARY_MQTT_WS_ENABLED: 'false',
        TRIBUTARY_HTTP_ENABLED: 'false',
      },
    })
    tributary = started
    context.progress(
      `tributary pid ${started.pid} on coap port ${started.coapPort}; registering ${params.devices} devices`,
    )
    const identities = await registerDevices(started.api, TENANT, {
      count: params.devices,
      prefix: 'load-',
      secret: 'password',
      concurrency: 4,
    })
    const credentials = identities.map(
      (i) => `Basic ${Buffer.from(`${i.username!}:${i.password!}`).toString('base64')}`,
    )
    baseline = await startBaseline({ brokers, topicPrefix: basePrefix })
    context.progress(`coap null handler pid ${baseline.pid} on port ${baseline.coapPort}`)
    const bench = kafka
    const contender = (server: CoapServer, topicPrefix: string): Contender<IngestSample> => ({
      label: server.label,
      run: (round) =>
        runOnce(
          server,
          round < 0 ? Math.min(params.warmupRequests, params.requests) : params.requests,
          params,
          credentials,
          () => bench.ingressRecords(topicPrefix),
        ),
    })
    const result = await sideBySide({
      candidate: contender(started, prefix),
      baseline: contender(baseline, basePrefix),
      rounds: params.rounds,
      warmupRounds: 1,
      onRun: (label, round, sample) =>
        context.progress(
          `${round < 0 ? 'warmup' : `round ${round + 1}/${params.rounds}`} ${label}: ${describe(sample)}`,
        ),
    })
    const ratios = {
      okPerSec: ratioOf(result, (s) => s.okPerSec),
      latencyP50Ms: ratioOf(result, (s) => s.latency.p50),
      latencyP99Ms: ratioOf(result, (s) => s.latency.p99),
      serverCpuUsPerReq: ratioOf(result, (s) => s.serverCpuUsPerReq),
      clientCpuUsPerReq: ratioOf(result, (s) => s.clientCpuUsPerReq),
      clientBusyPercent: ratioOf(result, (s) => s.clientBusyPercent),
      machineBusyPercent: ratioOf(result, (s) => s.machineBusyPercent),
    }
    const row = (label: string, r: Ratio): string[] => [
      label,
      formatNumber(r.candidate.median),
      formatNumber(r.baseline.median),
      formatRatio(r.ratio),
      formatRatioRange(r),
    ]
    const retransmitted = [...result.candidate.samples, ...result.baseline.samples].some(
      (s) => s.retransmissions > 0,
    )
    return {
      table: {
        title:
          `coap-ingest: ${formatNumber(params.requests)} confirmable POSTs of ${params.payloadBytes} B, ` +
          `${params.window} in flight over ${params.sockets} sockets from ${params.devices} devices, ` +
          `median of ${params.rounds} interleaved rounds`,
        columns: ['metric', 'tributary', 'coap null handler', 'ratio t/b', 'per-round ratios'],
        rows: [
          row('2.04 answers/s (POST → 2.04)', ratios.okPerSec),
          row('latency p50 ms', ratios.latencyP50Ms),
          row('latency p99 ms', ratios.latencyP99Ms),
          row('server CPU µs per request', ratios.serverCpuUsPerReq),
          row('load generator CPU µs per request', ratios.clientCpuUsPerReq),
          row('load generator busy % of one core', ratios.clientBusyPercent),
          row('machine busy % (all CPUs, Kafka included)', ratios.machineBusyPercent),
        ],
        notes: [
          'tributary: `tributary start --roles adapters,api` on Kafka, CoAP the only device listener (Basic credentials in option 4209, rate limit, ' +
            'last seen, 2.04 after the broker acknowledged); null handler: the `coap` server with no checks, the same ' +
            'CloudEvent published through the same bus code, 2.04 after the acknowledgement.',
          'ratio = median(tributary) / median(null handler); for req/s higher is better, for ms and µs lower is better.',
          ...(retransmitted
            ? ['some requests were retransmitted (a datagram was lost or late): see the JSON file.']
            : []),
        ],
      },
      data: { params, order: result.order, ratios, samples: result },
    }
  } finally {
    await Promise.allSettled([tributary?.stop(), baseline?.stop()])
    for (const p of [prefix, basePrefix]) {
      await kafka
        ?.deleteTopics(p)
        .catch((err: unknown) => context.progress(`topic cleanup failed: ${String(err)}`))
    }
    await kafka?.close()
    await rm(dataDir, { recursive: true, force: true })
  }
}

export const coapIngest: Scenario = {
  name: 'coap-ingest',
  description:
    'CoAP confirmable ingest: Tributary adapter (to Kafka) vs a bare coap null handler producing the same records; req/s, p50/p99, CPU per request',
  needsKafka: true,
  run,
}
