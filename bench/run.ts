// npm run bench [-- --scenario <name>] [--quick] [--rounds <n>] [--records <n>]
// Runs the benchmark scenarios: progress on stderr, a results table per scenario on stdout, and
// everything measured in bench/results/<ISO timestamp>.json. Exits non-zero when any scenario
// fails, including when Kafka cannot be had (no scenario is ever skipped silently).
import { mkdir, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { probeKafka, runningLocalKafka } from '../scripts/kafka.ts'
import { DEFAULT_PORT, startDaemon } from '../scripts/kafka/daemon.ts'
import type { Scenario, ScenarioContext, ScenarioResult } from './harness.ts'
import { BenchError, machine, progress, renderTable } from './harness.ts'
import { busEmbeddedVsKafka } from './scenarios/bus-embedded-vs-kafka.ts'
import { coapIngest } from './scenarios/coap-ingest.ts'
import { credentialLookups } from './scenarios/credential-lookups.ts'
import { httpIngest } from './scenarios/http-ingest.ts'
import { kafkaClient } from './scenarios/kafka-client.ts'
import { mqtt5IdleMemory, mqttIdleMemory } from './scenarios/mqtt-idle-memory.ts'
import { mqtt5Ingest, mqttIngest } from './scenarios/mqtt-ingest.ts'
import { processors } from './scenarios/processors.ts'
import { webhooks } from './scenarios/webhooks.ts'
import { webhooksProcess } from './scenarios/webhooks-process.ts'
import { commands } from './scenarios/commands.ts'
import { configPush } from './scenarios/config-push.ts'
import { startTime } from './scenarios/start-time.ts'
import { tracing } from './scenarios/tracing.ts'
import { files } from './scenarios/files.ts'

const SCENARIOS: readonly Scenario[] = [
  busEmbeddedVsKafka,
  kafkaClient,
  credentialLookups,
  processors,
  webhooks,
  webhooksProcess,
  commands,
  configPush,
  mqttIngest,
  mqtt5Ingest,
  mqttIdleMemory,
  mqtt5IdleMemory,
  httpIngest,
  coapIngest,
  startTime,
  tracing,
  files,
]
const RESULTS_DIR = fileURLToPath(new URL('results/', import.meta.url))

const USAGE = `usage: npm run bench -- [options]

  --scenario <name>   run only this scenario (repeat or comma-separate for several)
  --quick             small record counts: the whole bench in about a minute
  --rounds <n>        interleaved rounds per scenario (kafka-client runs at least 3)
  --records <n>       records per run (mqtt-ingest: messages; mqtt-idle-memory: connections;
                      http-ingest, coap-ingest: requests; webhooks: events per rate run;
                      config-push: devices;
                      webhooks-process: events per second; files: bytes of the
                      compared file)
  --help              this text

scenarios:
${SCENARIOS.map((s) => `  ${s.name.padEnd(24)}${s.description}`).join('\n')}

Kafka: KAFKA_BROKERS (host:port,...) if set, else the local broker of scripts/kafka.ts,
started on port ${DEFAULT_PORT} (KAFKA_PORT) when it is not running.`

interface Options {
  readonly scenarios: readonly Scenario[]
  readonly quick: boolean
  readonly rounds: number | undefined
  readonly records: number | undefined
}

function positiveInteger(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 1)
    throw new BenchError(`--${name} ${raw}: expected a positive integer`)
  return value
}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string', multiple: true },
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      records: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  })
  if (values.help) return undefined
  const names = (values.scenario ?? []).flatMap((s) => s.split(',')).filter((s) => s !== '')
  const unknown = names.filter((name) => !SCENARIOS.some((s) => s.name === name))
  if (unknown.length > 0) {
    throw new BenchError(
      `unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`,
    )
  }
  return {
    scenarios: names.length === 0 ? SCENARIOS : SCENARIOS.filter((s) => names.includes(s.name)),
    quick: values.quick,
    rounds: positiveInteger('rounds', values.rounds),
    records: positiveInteger('records', values.records),
  }
}

interface KafkaAccess {
  readonly brokers: string[] | undefined
  readonly source: string
  readonly problem: string | undefined
}

/** KAFKA_BROKERS, else the running local broker, else a local broker started now. */
async function findKafka(): Promise<KafkaAccess> {
  const fromEnv = process.env.KAFKA_BROKERS?.trim()
  if (fromEnv !== undefined && fromEnv !== '') {
    const problem = await probeKafka(fromEnv, 5_000)
    return problem === undefined
      ? { brokers: fromEnv.split(','), source: 'KAFKA_BROKERS', problem }
      : { brokers: undefined, source: 'KAFKA_BROKERS', problem: `KAFKA_BROKERS=${fromEnv}: ${problem}` }
  }
  const running = await runningLocalKafka()
  if (running !== undefined)
    return { brokers: running.split(','), source: 'scripts/kafka.ts', problem: undefined }
  const port = Number(process.env.KAFKA_PORT ?? DEFAULT_PORT)
  progress(`kafka: no local broker is running; starting one on port ${port} (as npm run kafka:start does)`)
  try {
    const { state } = await startDaemon(port)
    progress(`kafka: started pid ${state.pid} at ${state.brokers}; stop it with npm run kafka:stop`)
    return { brokers: state.brokers.split(','), source: 'scripts/kafka.ts (started)', problem: undefined }
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    return {
      brokers: undefined,
      source: 'scripts/kafka.ts',
      problem: `could not start the local broker: ${reason}\n  set KAFKA_BROKERS=host:port to use another one`,
    }
  }
}

interface Outcome {
  readonly scenario: string
  readonly result?: ScenarioResult
  readonly error?: string
  readonly seconds: number
}

async function main(argv: string[]): Promise<number> {
  let options: Options | undefined
  try {
    options = parseOptions(argv)
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`)
    return 2
  }
  if (options === undefined) {
    console.log(USAGE)
    return 0
  }
  const startedAt = new Date()
  progress(
    `bench: ${options.scenarios.map((s) => s.name).join(', ')}${options.quick ? ' (quick)' : ''} on ` +
      `${String(machine().cpus)} CPUs, Node ${process.versions.node}`,
  )
  const kafka: KafkaAccess = options.scenarios.some((s) => s.needsKafka)
    ? await findKafka()
    : { brokers: undefined, source: 'not needed', problem: 'no scenario needs Kafka' }
  if (kafka.brokers !== undefined) progress(`kafka: ${kafka.brokers.join(',')} (${kafka.source})`)
  else progress(`kafka: UNAVAILABLE: ${kafka.problem ?? 'unknown reason'}`)

  const outcomes: Outcome[] = []
  for (const scenario of options.scenarios) {
    const started = performance.now()
    const context: ScenarioContext = {
      quick: options.quick,
      brokers: kafka.brokers,
      kafkaProblem: kafka.problem,
      rounds: options.rounds,
      records: options.records,
      progress: (message) => progress(`${scenario.name}: ${message}`),
    }
    progress(`${scenario.name}: starting`)
    try {
      const result = await scenario.run(context)
      const seconds = (performance.now() - started) / 1000
      outcomes.push({ scenario: scenario.name, result, seconds })
      progress(`${scenario.name}: done in ${seconds.toFixed(1)} s`)
    } catch (err) {
      const seconds = (performance.now() - started) / 1000
      const error =
        err instanceof BenchError
          ? err.message
          : err instanceof Error
            ? (err.stack ?? err.message)
            : String(err)
      outcomes.push({ scenario: scenario.name, error, seconds })
      progress(`${scenario.name}: FAILED after ${seconds.toFixed(1)} s: ${error}`)
    }
  }

  const tables = outcomes.flatMap((o) => (o.result === undefined ? [] : [renderTable(o.result.table)]))
  if (tables.length > 0) console.log(`${tables.join('\n\n')}\n`)

  if (outcomes.some((o) => o.result !== undefined)) {
    const finishedAt = new Date()
    const file = `${RESULTS_DIR}${startedAt.toISOString().replaceAll(':', '-')}.json`
    const report = {
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      quick: options.quick,
      machine: machine(),
      kafka: { brokers: kafka.brokers, source: kafka.source, problem: kafka.problem },
      scenarios: outcomes.map((o) => ({
        name: o.scenario,
        seconds: Number(o.seconds.toFixed(2)),
        ...(o.error === undefined ? {} : { error: o.error }),
        ...(o.result === undefined ? {} : { table: o.result.table, data: o.result.data }),
      })),
    }
    await mkdir(RESULTS_DIR, { recursive: true })
    await writeFile(file, `${JSON.stringify(report, null, 2)}\n`)
    progress(`results written to ${file}`)
  }

  const failed = outcomes.filter((o) => o.error !== undefined)
  for (const o of failed) console.error(`bench: scenario ${o.scenario} FAILED: ${o.error}`)
  return failed.length === 0 ? 0 : 1
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
    // A client that keeps a socket or timer open must not keep a finished bench waiting.
    setTimeout(() => {
      progress('bench: handles still open after finishing; exiting')
      process.exit(code)
    }, 5_000).unref()
  },
  (err: unknown) => {
    console.error(err)
    process.exit(1)
  },
)
