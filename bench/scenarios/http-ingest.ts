// HTTP ingest through Tributary's device HTTP adapter (hono; bearer device tokens checked, JSON
// checked, rate bucket taken, 202 only after Kafka acknowledged the event) against a bare node:http
// handler producing the same records with the same Kafka bus code (bench/http-baseline.ts), under
// the same autocannon load: same connections, request count and body, interleaved rounds.
import autocannon from 'autocannon'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { HttpServer } from '../http-servers.ts'
import { startBaseline, startTributaryHttp } from '../http-servers.ts'
import type { Contender, Ratio, Scenario, ScenarioContext, ScenarioResult } from '../harness.ts'
import {
  BenchError,
  formatNumber,
  formatRatio,
  formatRatioRange,
  ratioOf,
  sideBySide,
  withTimeout,
} from '../harness.ts'
import type { BenchKafka } from '../mqtt-servers.ts'
import {
  benchTopicPrefix,
  machineCpu,
  openBenchKafka,
  processStats,
  registerDevices,
} from '../mqtt-servers.ts'

interface Params {
  readonly connections: number
  readonly devices: number
  /** Requests per timed run. */
  readonly requests: number
  readonly warmupRequests: number
  readonly rounds: number
  readonly payloadBytes: number
}

const FULL: Params = {
  connections: 64,
  devices: 64,
  requests: 60_000,
  warmupRequests: 10_000,
  rounds: 3,
  payloadBytes: 256,
}
const QUICK: Params = { ...FULL, requests: 10_000, warmupRequests: 3_000, rounds: 2 }

const RUN_TIMEOUT_MS = 300_000
const PATH = '/v1/bench/telemetry'

export interface HttpSample {
  readonly requests: number
  readonly perSec: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly serverCpuUsPerReq: number
  readonly machineBusyPercent: number
}

async function runOnce(
  server: HttpServer,
  tokens: readonly string[],
  requests: number,
  params: Params,
): Promise<HttpSample> {
  const body = JSON.stringify({ reading: 'x'.repeat(Math.max(0, params.payloadBytes - 14)) })
  let next = 0
  const before = await server.records()
  const [serverBefore, machineBefore] = await Promise.all([processStats(server.pid), machineCpu()])
  const result = await withTimeout(
    autocannon({
      url: `http://127.0.0.1:${server.port}`,
      connections: params.connections,
      amount: requests,
      timeout: 30,
      requests: [
        {
          method: 'POST',
          path: PATH,
          body,
          setupRequest: (request) => ({
            ...request,
            headers: {
              'content-type': 'application/json',
              authorization: `Bearer ${tokens[next++ % tokens.length]!}`,
            },
          }),
        },
      ],
    }),
    RUN_TIMEOUT_MS,
    `${server.label}: autocannon did not finish within ${RUN_TIMEOUT_MS} ms`,
  )
  const [serverAfter, machineAfter] = await Promise.all([processStats(server.pid), machineCpu()])
  const accepted = result['2xx']
  if (result.non2xx > 0 || result.errors > 0 || accepted < requests) {
    throw new BenchError(
      `${server.label}: ${accepted} of ${requests} requests answered 2xx (${result.non2xx} non-2xx, ${result.errors} errors)\n${server.tail()}`,
    )
  }
  // Every 202 promised a durable record: count them on Kafka.
  const gained = (await server.records()) - before
  if (gained < requests)
    throw new BenchError(`${server.label}: ${requests} requests answered 202 but the topic gained ${gained}`)
  const seconds = (result.finish.getTime() - result.start.getTime()) / 1000
  return {
    requests,
    perSec: requests / seconds,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    serverCpuUsPerReq: ((serverAfter.cpuMs - serverBefore.cpuMs) * 1000) / requests,
    machineBusyPercent:
      (100 * (machineAfter.busyMs - machineBefore.busyMs)) / (machineAfter.totalMs - machineBefore.totalMs),
  }
}

const describe = (s: HttpSample): string =>
  `${formatNumber(s.perSec)} req/s, p50 ${formatNumber(s.p50Ms)} ms, p99 ${formatNumber(s.p99Ms)} ms, ` +
  `server ${formatNumber(s.serverCpuUsPerReq)} µs/req, machine busy ${formatNumber(s.machineBusyPercent)} %`

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
  const prefix = benchTopicPrefix('http-ingest')
  const baselinePrefix = `${prefix}-bare`
  const dir = await mkdtemp(join(tmpdir(), 'tributary-bench-http-'))
  let kafka: BenchKafka | undefined
  let tributary: HttpServer | undefined
  let baseline: HttpServer | undefined
  try {
    kafka = await openBenchKafka(brokers)
    const started = await startTributaryHttp(brokers, prefix, join(dir, 'data'), kafka)
    tributary = started.server
    context.progress(
      `tributary pid ${tributary.pid} on http port ${tributary.port}; registering ${params.devices} devices with tokens`,
    )
    const identities = await registerDevices(started.api, 'bench', {
      count: params.devices,
      prefix: 'http-',
      secret: 'token',
      concurrency: 4,
    })
    const tokens = identities.flatMap((i) => (i.password === undefined ? [] : [i.password]))
    const devicesFile = join(dir, 'devices.json')
    await writeFile(
      devicesFile,
      JSON.stringify(Object.fromEntries(identities.map((i) => [i.password ?? '', i.clientId]))),
    )
    baseline = await startBaseline(brokers, baselinePrefix, devicesFile, kafka)
    context.progress(`node:http baseline pid ${baseline.pid} on port ${baseline.port}`)
    const contender = (server: HttpServer): Contender<HttpSample> => ({
      label: server.label,
      run: (round) => runOnce(server, tokens, round < 0 ? params.warmupRequests : params.requests, params),
    })
    const result = await sideBySide({
      candidate: contender(tributary),
      baseline: contender(baseline),
      rounds: params.rounds,
      warmupRounds: 1,
      onRun: (label, round, sample) =>
        context.progress(
          `${round < 0 ? 'warmup' : `round ${round + 1}/${params.rounds}`} ${label}: ${describe(sample)}`,
        ),
    })
    const ratios = {
      perSec: ratioOf(result, (s) => s.perSec),
      p50Ms: ratioOf(result, (s) => s.p50Ms),
      p99Ms: ratioOf(result, (s) => s.p99Ms),
      serverCpuUsPerReq: ratioOf(result, (s) => s.serverCpuUsPerReq),
      machineBusyPercent: ratioOf(result, (s) => s.machineBusyPercent),
    }
    const row = (label: string, r: Ratio): string[] => [
      label,
      formatNumber(r.candidate.median),
      formatNumber(r.baseline.median),
      formatRatio(r.ratio),
      formatRatioRange(r),
    ]
    return {
      table: {
        title:
          `http-ingest: ${formatNumber(params.requests)} POSTs of ${params.payloadBytes} B JSON from ${params.devices} devices over ` +
          `${params.connections} connections, median of ${params.rounds} interleaved rounds`,
        columns: ['metric', 'tributary', 'node:http', 'ratio t/n', 'per-round ratios'],
        rows: [
          row('requests/s (POST → 202 after Kafka ack)', ratios.perSec),
          row('latency p50 ms', ratios.p50Ms),
          row('latency p99 ms', ratios.p99Ms),
          row('server CPU µs per request', ratios.serverCpuUsPerReq),
          row('machine busy % (all CPUs, Kafka and autocannon included)', ratios.machineBusyPercent),
        ],
        notes: [
          'tributary: `tributary start --roles adapters,api` on Kafka, only the HTTP listener enabled, bearer device tokens;',
          'node:http: a bare handler building the same CloudEvent records with the same Kafka bus code, no checks.',
          'ratio = median(tributary) / median(node:http); for req/s higher is better, for ms and µs lower is better.',
        ],
      },
      data: { params, order: result.order, ratios, samples: result },
    }
  } finally {
    await Promise.allSettled([tributary?.stop(), baseline?.stop()])
    for (const p of [prefix, baselinePrefix]) {
      await kafka
        ?.deleteTopics(p)
        .catch((err: unknown) => context.progress(`topic cleanup failed: ${String(err)}`))
    }
    await kafka?.close()
    await rm(dir, { recursive: true, force: true })
  }
}

export const httpIngest: Scenario = {
  name: 'http-ingest',
  description:
    'HTTP ingest: Tributary device HTTP adapter (to Kafka) vs a bare node:http handler producing the same records; req/s, p50/p99',
  needsKafka: true,
  run,
}
