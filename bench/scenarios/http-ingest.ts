// HTTP ingest through Tributary's device HTTP adapter (hono; bearer device tokens checked, JSON
// checked, rate bucket taken, 202 only after Kafka acknowledged the event) against a bare node:http
// handler producing the same records with the same Kafka bus code (bench/http-baseline.ts), under
// the same autocannon load: same connections, request count and body, interleaved rounds.
import autocannon from 'autocannon'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Contender, Scenario, ScenarioContext, ScenarioResult } from '../harness.ts'
import {
  compareMetrics,
  formatNumber,
  reportRuns,
  scenarioParams,
  sideBySide,
  withTimeout,
} from '../harness.ts'
import { startHttpBaseline, startHttpTributary } from '../http-servers.ts'
import { measureIngestRun } from '../ingest-run.ts'
import type { ServerProcess } from '../server-process.ts'
import { withServerBench } from '../server-bench.ts'
import { registerDevices } from '../tributary-process.ts'

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
  server: ServerProcess,
  tokens: readonly string[],
  requests: number,
  params: Params,
  records: () => Promise<number>,
): Promise<HttpSample> {
  const body = JSON.stringify({ reading: 'x'.repeat(Math.max(0, params.payloadBytes - 14)) })
  let next = 0
  const measured = await measureIngestRun(server, {
    ops: requests,
    records,
    load: async () => {
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
        `autocannon did not finish within ${RUN_TIMEOUT_MS} ms`,
      )
      const accepted = result['2xx']
      if (result.non2xx > 0 || result.errors > 0 || accepted < requests) {
        throw new Error(
          `${accepted} of ${requests} requests answered 2xx (${result.non2xx} non-2xx, ${result.errors} errors)`,
        )
      }
      return result
    },
  })
  const result = measured.load
  const seconds = (result.finish.getTime() - result.start.getTime()) / 1000
  return {
    requests,
    perSec: requests / seconds,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    serverCpuUsPerReq: measured.serverCpuUsPerOp,
    machineBusyPercent: measured.machineBusyPercent,
  }
}

const describe = (s: HttpSample): string =>
  `${formatNumber(s.perSec)} req/s, p50 ${formatNumber(s.p50Ms)} ms, p99 ${formatNumber(s.p99Ms)} ms, ` +
  `server ${formatNumber(s.serverCpuUsPerReq)} µs/req, machine busy ${formatNumber(s.machineBusyPercent)} %`

function run(context: ScenarioContext): Promise<ScenarioResult> {
  const params = scenarioParams(context, { full: FULL, quick: QUICK }, 'requests')
  return withServerBench(context, 'http-ingest', async (bench) => {
    const tributary = bench.own(await startHttpTributary(bench.tributaryOptions))
    context.progress(
      `tributary pid ${tributary.pid} on http port ${tributary.port}; registering ${params.devices} devices with tokens`,
    )
    const identities = await registerDevices(tributary.api, 'bench', {
      count: params.devices,
      prefix: 'http-',
      secret: 'token',
      concurrency: 4,
    })
    const tokens = identities.map((i) => i.password)
    const devicesFile = join(bench.dir, 'devices.json')
    await writeFile(
      devicesFile,
      JSON.stringify(Object.fromEntries(identities.map((i) => [i.password, i.clientId]))),
    )
    const baseline = bench.own(await startHttpBaseline(bench.brokers, bench.baselinePrefix, devicesFile))
    context.progress(`node:http baseline pid ${baseline.pid} on port ${baseline.port}`)
    const contender = (server: ServerProcess, topicPrefix: string): Contender<HttpSample> => ({
      label: server.label,
      run: (round) =>
        runOnce(server, tokens, round < 0 ? params.warmupRequests : params.requests, params, () =>
          bench.kafka.ingressRecords(topicPrefix),
        ),
    })
    const result = await sideBySide({
      candidate: contender(tributary, bench.topicPrefix),
      baseline: contender(baseline, bench.baselinePrefix),
      rounds: params.rounds,
      warmupRounds: 1,
      onRun: reportRuns(context, params.rounds, describe),
    })
    const { ratios, rows } = compareMetrics(result, {
      perSec: { label: 'requests/s (POST → 202 after Kafka ack)', of: (s) => s.perSec },
      p50Ms: { label: 'latency p50 ms', of: (s) => s.p50Ms },
      p99Ms: { label: 'latency p99 ms', of: (s) => s.p99Ms },
      serverCpuUsPerReq: { label: 'server CPU µs per request', of: (s) => s.serverCpuUsPerReq },
      machineBusyPercent: {
        label: 'machine busy % (all CPUs, Kafka and autocannon included)',
        of: (s) => s.machineBusyPercent,
      },
    })
    return {
      table: {
        title:
          `http-ingest: ${formatNumber(params.requests)} POSTs of ${params.payloadBytes} B JSON from ${params.devices} devices over ` +
          `${params.connections} connections, median of ${params.rounds} interleaved rounds`,
        columns: ['metric', 'tributary', 'node:http', 'ratio t/n', 'per-round ratios'],
        rows,
        notes: [
          'tributary: `tributary start --roles adapters,api` on Kafka, only the HTTP listener enabled, bearer device tokens;',
          'node:http: a bare handler building the same CloudEvent records with the same Kafka bus code, no checks.',
          'ratio = median(tributary) / median(node:http); for req/s higher is better, for ms and µs lower is better.',
        ],
      },
      data: { params, order: result.order, ratios, samples: result },
    }
  })
}

export const httpIngest: Scenario = {
  name: 'http-ingest',
  description:
    'HTTP ingest: Tributary device HTTP adapter (to Kafka) vs a bare node:http handler producing the same records; req/s, p50/p99',
  needsKafka: true,
  run,
}
