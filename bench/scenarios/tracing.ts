// What tracing costs the pipeline: a `tributary start --roles adapters,processors,api` process on
// Kafka taking device HTTP posts and processing every one onto the tenant topic, with tracing off
// against the same process with tracing on (every trace recorded, and one in a hundred), its spans
// exported over OTLP/HTTP to a sink in this process. Throughput is end to end: the load's first
// request until the tenant topic holds every event. Interleaved rounds, off run beside each
// traced run.
import autocannon from 'autocannon'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { createKafkaBus } from '../../core/bus/kafka.ts'
import { topicNames } from '../../core/events/topics.ts'
import type { Contender, Scenario, ScenarioContext, ScenarioResult } from '../harness.ts'
import {
  BenchError,
  compareMetrics,
  formatNumber,
  reportRuns,
  scenarioParams,
  sideBySide,
  withTimeout,
} from '../harness.ts'
import { startHttpTributary } from '../http-servers.ts'
import { startCpuMeter } from '../server-process.ts'
import { withServerBench } from '../server-bench.ts'
import type { TributaryProcess } from '../tributary-process.ts'
import { registerDevices } from '../tributary-process.ts'

interface Params {
  readonly connections: number
  readonly devices: number
  /** Events per timed run. */
  readonly events: number
  readonly warmupEvents: number
  readonly rounds: number
  readonly payloadBytes: number
}

const FULL: Params = {
  connections: 32,
  devices: 32,
  events: 40_000,
  warmupEvents: 5_000,
  rounds: 3,
  payloadBytes: 256,
}
const QUICK: Params = { ...FULL, devices: 4, connections: 4, events: 500, warmupEvents: 100, rounds: 1 }

const TENANT = 'bench'
const RUN_TIMEOUT_MS = 300_000

interface Sample {
  readonly events: number
  readonly perSec: number
  readonly serverCpuUsPerEvent: number
  readonly machineBusyPercent: number
}

/** Spans received by the sink: counted from the OTLP/HTTP JSON export, then discarded. */
interface Sink {
  readonly url: string
  spans(): number
  close(): Promise<void>
}

async function startSink(): Promise<Sink> {
  let spans = 0
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (c: Buffer) => chunks.push(c))
    request.on('end', () => {
      spans += (
        Buffer.concat(chunks)
          .toString('utf8')
          .match(/"spanId"/g) ?? []
      ).length
      response.setHeader('content-type', 'application/json')
      response.end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
    spans: () => spans,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

async function run(context: ScenarioContext): Promise<ScenarioResult> {
  const params = scenarioParams(context, { full: FULL, quick: QUICK }, 'events')
  const sink = await startSink()
  try {
    return await withServerBench(context, 'tracing', async (bench) => {
      const admin = await createKafkaBus({ brokers: bench.brokers, clientId: 'tributary-bench-tracing' })
      const prefixes = {
        off: bench.topicPrefix,
        all: bench.baselinePrefix,
        // A third prefix of this run: its topics are deleted below.
        sampled: `${bench.topicPrefix}-s1`,
      }
      try {
        const start = async (name: keyof typeof prefixes, env: Record<string, string>) => {
          const server = bench.own(
            await startHttpTributary({
              brokers: bench.brokers,
              dataDir: join(bench.dir, name),
              topicPrefix: prefixes[name],
              roles: 'adapters,processors,api',
              env,
            }),
          )
          context.progress(`${name}: tributary pid ${server.pid} on http port ${server.port}`)
          const tokens = (
            await registerDevices(server.api, TENANT, {
              count: params.devices,
              prefix: 'trace-',
              secret: 'token',
              concurrency: 4,
            })
          ).map((i) => i.password)
          return { server: { ...server, label: `tributary (${name})` }, tokens, topic: name }
        }
        const traced = { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: sink.url }
        const off = await start('off', {})
        const all = await start('all', { ...traced, OTEL_TRACES_SAMPLER: 'parentbased_always_on' })
        const sampled = await start('sampled', {
          ...traced,
          OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
          OTEL_TRACES_SAMPLER_ARG: '0.01',
        })

        const processed = async (prefix: string): Promise<number> => {
          try {
            const offsets = await admin.admin.offsets(topicNames(prefix).events(TENANT))
            return offsets.reduce((sum, p) => sum + p.next - p.earliest, 0)
          } catch {
            return 0 // the processors create the tenant topic with its first event
          }
        }

        const runOnce = async (
          target: { server: TributaryProcess; tokens: string[]; topic: keyof typeof prefixes },
          events: number,
        ): Promise<Sample> => {
          const prefix = prefixes[target.topic]
          const before = await processed(prefix)
          const body = JSON.stringify({ reading: 'x'.repeat(Math.max(0, params.payloadBytes - 14)) })
          let next = 0
          const cpu = await startCpuMeter({ server: target.server.pid })
          const began = performance.now()
          const result = await withTimeout(
            autocannon({
              url: `http://127.0.0.1:${target.server.port}`,
              connections: params.connections,
              amount: events,
              timeout: 30,
              requests: [
                {
                  method: 'POST',
                  path: '/v1/bench/telemetry',
                  body,
                  setupRequest: (request) => ({
                    ...request,
                    headers: {
                      'content-type': 'application/json',
                      authorization: `Bearer ${target.tokens[next++ % target.tokens.length]!}`,
                    },
                  }),
                },
              ],
            }),
            RUN_TIMEOUT_MS,
            `autocannon did not finish within ${RUN_TIMEOUT_MS} ms`,
          )
          if (result['2xx'] < events)
            throw new BenchError(
              `${target.server.label}: ${result['2xx']} of ${events} posts answered 2xx\n${target.server.tail()}`,
            )
          // End to end: until the processors have put every event on the tenant topic.
          const deadline = performance.now() + RUN_TIMEOUT_MS
          while ((await processed(prefix)) - before < events) {
            if (performance.now() > deadline)
              throw new BenchError(`${target.server.label}: the processors did not finish in time`)
            await new Promise((resolve) => setTimeout(resolve, 20))
          }
          const seconds = (performance.now() - began) / 1000
          const used = await cpu.stop()
          return {
            events,
            perSec: events / seconds,
            serverCpuUsPerEvent: (used.ms.server * 1000) / events,
            machineBusyPercent: used.machineBusyPercent,
          }
        }

        const contender = (target: Awaited<ReturnType<typeof start>>): Contender<Sample> => ({
          label: target.server.label,
          run: (round) => runOnce(target, round < 0 ? params.warmupEvents : params.events),
        })
        const describe = (s: Sample): string =>
          `${formatNumber(s.perSec)} events/s, server ${formatNumber(s.serverCpuUsPerEvent)} µs/event, machine busy ${formatNumber(s.machineBusyPercent)} %`
        const metrics = (what: string) => ({
          perSec: { label: `${what}: events/s (POST → tenant topic)`, of: (s: Sample) => s.perSec },
          serverCpuUsPerEvent: {
            label: `${what}: server CPU µs per event`,
            of: (s: Sample) => s.serverCpuUsPerEvent,
          },
        })
        const rows: string[][] = []
        const ratios: Record<string, unknown> = {}
        for (const [name, target, what] of [
          ['all', all, 'all traces'],
          ['sampled', sampled, '1 % of traces'],
        ] as const) {
          const result = await sideBySide({
            candidate: contender(target),
            baseline: contender(off),
            rounds: params.rounds,
            warmupRounds: 1,
            onRun: reportRuns(context, params.rounds, describe),
          })
          const compared = compareMetrics(result, metrics(what))
          rows.push(...compared.rows)
          ratios[name] = compared.ratios
        }
        if (sink.spans() === 0) throw new BenchError('tracing was on, yet no span reached the OTLP sink')
        return {
          table: {
            title:
              `tracing: ${formatNumber(params.events)} HTTP posts of ${params.payloadBytes} B from ${params.devices} devices ` +
              `processed onto the tenant topic, tracing on vs off, median of ${params.rounds} interleaved rounds`,
            columns: ['metric', 'traced', 'off', 'ratio t/o', 'per-round ratios'],
            rows,
            notes: [
              '`tributary start --roles adapters,processors,api` on Kafka, HTTP listener only; two spans per event (ingest, process).',
              'traced: OTLP/HTTP export to a sink in the bench process; "all traces" parentbased_always_on, "1 %" parentbased_traceidratio 0.01.',
              `spans received by the sink: ${formatNumber(sink.spans())}.`,
            ],
          },
          data: { params, ratios, spans: sink.spans() },
        }
      } finally {
        await admin.admin
          .listTopics()
          .then((names) => names.filter((t) => t.startsWith(`${prefixes.sampled}.`)))
          .then((names) => (names.length > 0 ? admin.admin.deleteTopics(names) : undefined))
          .catch((err: unknown) => context.progress(`topic cleanup failed: ${String(err)}`))
        await admin.close()
      }
    })
  } finally {
    await sink.close()
  }
}

export const tracing: Scenario = {
  name: 'tracing',
  description:
    'Tracing overhead: pipeline throughput (HTTP → processors → tenant topic) with OpenTelemetry spans on (100 %, 1 %) vs off',
  needsKafka: true,
  run,
}
