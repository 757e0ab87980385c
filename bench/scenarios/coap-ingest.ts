// Confirmable CoAP POSTs through Tributary's CoAP adapter (each 2.04 only after Kafka acknowledged
// the event) against a bare `coap` server whose handler publishes the same record through the same
// bus code, under the same load from bench/coap-load.ts: same window, sockets, requests and
// payload, interleaved rounds.
import type { CoapLoadResult } from '../coap-load.ts'
import { runCoapLoad } from '../coap-load.ts'
import { startCoapBaseline, startCoapTributary } from '../coap-servers.ts'
import type { Contender, Scenario, ScenarioContext, ScenarioResult } from '../harness.ts'
import { compareMetrics, formatNumber, reportRuns, scenarioParams, sideBySide } from '../harness.ts'
import { measureIngestRun } from '../ingest-run.ts'
import type { ServerProcess } from '../server-process.ts'
import { withServerBench } from '../server-bench.ts'
import { registerDevices } from '../tributary-process.ts'

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

/** The load generator's figures (its CPU time per request instead of in all) and the server's. */
interface IngestSample extends Omit<CoapLoadResult, 'clientCpuMs'> {
  readonly serverCpuUsPerReq: number
  readonly clientCpuUsPerReq: number
  readonly clientBusyPercent: number
  readonly machineBusyPercent: number
  readonly recordsGained: number
}

async function runOnce(
  server: ServerProcess,
  requests: number,
  params: Params,
  credentials: readonly string[],
  records: () => Promise<number>,
): Promise<IngestSample> {
  const measured = await measureIngestRun(server, {
    ops: requests,
    records,
    load: async () => {
      const load = await runCoapLoad(
        { host: '127.0.0.1', port: server.port },
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
      const ok = load.codes['2.04'] ?? 0
      if (ok !== requests) {
        throw new Error(`${ok} of ${requests} requests answered 2.04 (${JSON.stringify(load.codes)})`)
      }
      return load
    },
  })
  const { clientCpuMs, ...load } = measured.load
  return {
    ...load,
    serverCpuUsPerReq: measured.serverCpuUsPerOp,
    clientCpuUsPerReq: (clientCpuMs * 1000) / requests,
    clientBusyPercent: (100 * clientCpuMs) / load.ms,
    machineBusyPercent: measured.machineBusyPercent,
    recordsGained: measured.recordsGained ?? Number.NaN,
  }
}

const describe = (s: IngestSample): string =>
  `${formatNumber(s.okPerSec)} req/s, p50 ${formatNumber(s.latency.p50)} ms p99 ${formatNumber(s.latency.p99)} ms, ` +
  `server ${formatNumber(s.serverCpuUsPerReq)} µs/req, client busy ${formatNumber(s.clientBusyPercent)} %, ` +
  `machine busy ${formatNumber(s.machineBusyPercent)} %, retransmissions ${s.retransmissions}, separate ${s.separate}`

function run(context: ScenarioContext): Promise<ScenarioResult> {
  const params = scenarioParams(context, { full: FULL, quick: QUICK }, 'requests')
  return withServerBench(context, 'coap-ingest', async (bench) => {
    const tributary = bench.own(await startCoapTributary(bench.tributaryOptions))
    context.progress(
      `tributary pid ${tributary.pid} on coap port ${tributary.port}; registering ${params.devices} devices`,
    )
    const identities = await registerDevices(tributary.api, TENANT, {
      count: params.devices,
      prefix: 'load-',
      secret: 'password',
      concurrency: 4,
    })
    const credentials = identities.map(
      (i) => `Basic ${Buffer.from(`${i.username}:${i.password}`).toString('base64')}`,
    )
    const baseline = bench.own(
      await startCoapBaseline({ brokers: bench.brokers, topicPrefix: bench.baselinePrefix }),
    )
    context.progress(`coap null handler pid ${baseline.pid} on port ${baseline.port}`)
    const contender = (server: ServerProcess, topicPrefix: string): Contender<IngestSample> => ({
      label: server.label,
      run: (round) =>
        runOnce(
          server,
          round < 0 ? Math.min(params.warmupRequests, params.requests) : params.requests,
          params,
          credentials,
          () => bench.kafka.ingressRecords(topicPrefix),
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
      okPerSec: { label: '2.04 answers/s (POST → 2.04)', of: (s) => s.okPerSec },
      latencyP50Ms: { label: 'latency p50 ms', of: (s) => s.latency.p50 },
      latencyP99Ms: { label: 'latency p99 ms', of: (s) => s.latency.p99 },
      serverCpuUsPerReq: { label: 'server CPU µs per request', of: (s) => s.serverCpuUsPerReq },
      clientCpuUsPerReq: { label: 'load generator CPU µs per request', of: (s) => s.clientCpuUsPerReq },
      clientBusyPercent: { label: 'load generator busy % of one core', of: (s) => s.clientBusyPercent },
      machineBusyPercent: {
        label: 'machine busy % (all CPUs, Kafka included)',
        of: (s) => s.machineBusyPercent,
      },
    })
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
        rows,
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
  })
}

export const coapIngest: Scenario = {
  name: 'coap-ingest',
  description:
    'CoAP confirmable ingest: Tributary adapter (to Kafka) vs a bare coap null handler producing the same records; req/s, p50/p99, CPU per request',
  needsKafka: true,
  run,
}
