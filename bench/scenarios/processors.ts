// The processor against a bare consume → produce passthrough on the same bus, embedded and Kafka:
// (a) draining a pre-filled ingress topic (rec/s), (b) consumer lag while events arrive at a fixed
// rate (max and p99 of the records behind, and how fast it is back to 0 once the input stops).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { EventBus } from '../../core/bus/bus.ts'
import { createEmbeddedBus } from '../../core/bus/embedded/index.ts'
import { createKafkaBus } from '../../core/bus/kafka.ts'
import type { Scenario, ScenarioContext, ScenarioResult, SideBySide } from '../harness.ts'
import { compareMetrics, formatNumber, median, reportRuns, requireKafka } from '../harness.ts'
import { scenarioParams, sideBySide } from '../harness.ts'
import type { DrainSample, Kind, LagSample, RunDeps } from '../processor-runs.ts'
import { BENCH_TENANT, BOUNDED_DRAIN_MS, LAG_SAMPLE_MS, drainRun, lagRun } from '../processor-runs.ts'
import { DEVICES, PARTITIONS, VALUE_BYTES, buildRecords } from '../records.ts'
import { openBenchRegistry } from '../registry.ts'

interface Params {
  /** Records pre-filled and drained per throughput run. */
  readonly records: number
  readonly rounds: number
  readonly warmupRecords: number
  /** Fixed input rate of the lag runs, events per second, for `rateSeconds`. */
  readonly rate: number
  readonly rateSeconds: number
}

const FULL: Params = { records: 50_000, rounds: 3, warmupRecords: 5_000, rate: 2_000, rateSeconds: 10 }
const QUICK: Params = { records: 5_000, rounds: 1, warmupRecords: 1_000, rate: 1_000, rateSeconds: 3 }

export interface ProcessorSample {
  readonly drain: DrainSample
  /** Absent in warmup rounds. */
  readonly lag?: LagSample | undefined
}

const describeSample = (s: ProcessorSample): string =>
  `drain ${formatNumber(s.drain.afterJoinRecordsPerSec)} rec/s after join` +
  (s.lag === undefined
    ? ''
    : `, lag max ${formatNumber(s.lag.stats.max)} p99 ${formatNumber(s.lag.stats.p99)}, ` +
      `0 again ${formatNumber(s.lag.drainMs)} ms after the input stopped`)

/** Processor and passthrough interleaved on one bus: a drain run, then (timed rounds) a lag run. */
function compareOn(deps: RunDeps, params: Params, context: ScenarioContext) {
  const contender = (kind: Kind) => ({
    label: `${deps.bus.kind} ${kind}`,
    run: async (round: number): Promise<ProcessorSample> => ({
      drain: await drainRun(deps, kind, round < 0 ? params.warmupRecords : params.records),
      lag: round < 0 ? undefined : await lagRun(deps, kind, params.rate, params.rateSeconds),
    }),
  })
  return sideBySide({
    candidate: contender('processor'),
    baseline: contender('passthrough'),
    rounds: params.rounds,
    warmupRounds: 1,
    onRun: reportRuns(context, params.rounds, describeSample),
  })
}

function rowsOf(result: SideBySide<ProcessorSample>, bus: string, params: Params) {
  const lag = (s: ProcessorSample): LagSample => s.lag!
  const at = `at ${formatNumber(params.rate)} ev/s`
  return compareMetrics(result, {
    endToEnd: { label: `${bus}: rec/s, end to end (join included)`, of: (s) => s.drain.recordsPerSec },
    afterJoin: { label: `${bus}: rec/s after join`, of: (s) => s.drain.afterJoinRecordsPerSec },
    lagMax: { label: `${bus}: lag max ${at} (records)`, of: (s) => lag(s).stats.max },
    lagP99: { label: `${bus}: lag p99 ${at} (records)`, of: (s) => lag(s).stats.p99 },
    drainMs: { label: `${bus}: ms to lag 0 after the input stopped`, of: (s) => lag(s).drainMs },
  })
}

function boundedNote(result: SideBySide<ProcessorSample>, bus: string): string {
  const bounded = (samples: ProcessorSample[]) =>
    `${samples.filter((s) => s.lag?.bounded === true).length}/${samples.length}`
  const rate = median(result.candidate.samples.map((s) => s.lag!.inputPerSec))
  return (
    `${bus}: lag back to 0 within ${BOUNDED_DRAIN_MS} ms of the input stopping in ` +
    `${bounded(result.candidate.samples)} processor and ${bounded(result.baseline.samples)} passthrough ` +
    `runs (input achieved ${formatNumber(rate)} ev/s)`
  )
}

async function run(context: ScenarioContext): Promise<ScenarioResult> {
  const brokers = requireKafka(context)
  const params = scenarioParams(context, { full: FULL, quick: QUICK }, 'records')
  const pool = buildRecords()
  const dataDir = await mkdtemp(join(tmpdir(), 'tributary-bench-processors-'))
  const registry = await openBenchRegistry(BENCH_TENANT, DEVICES)
  let embedded: EventBus | undefined
  let kafka: EventBus | undefined
  try {
    embedded = await createEmbeddedBus({ dataDir })
    kafka = await createKafkaBus({ brokers, clientId: 'tributary-bench' })
    const onEmbedded = await compareOn({ bus: embedded, auth: registry.auth, pool }, params, context)
    const onKafka = await compareOn({ bus: kafka, auth: registry.auth, pool }, params, context)
    const e = rowsOf(onEmbedded, 'embedded', params)
    const k = rowsOf(onKafka, 'kafka', params)
    return {
      table: {
        title:
          `processors: consume → steps → produce vs a bare consume → produce passthrough, ` +
          `${formatNumber(params.records)} records of ${VALUE_BYTES} B, ${PARTITIONS} partitions, ` +
          `median of ${params.rounds} interleaved rounds`,
        columns: ['metric', 'processor', 'passthrough', 'ratio p/b', 'per-round ratios'],
        rows: [...e.rows, ...k.rows],
        notes: [
          'Both take batches of 100 (the bus default) and publish each batch in one call before the commit.',
          `Registry: PGlite in process behind the cached RegistryAuth, tenant ${BENCH_TENANT}, ` +
            `${DEVICES} devices, no quotas, schemas or routes; cluster state in process.`,
          `Lag = end offsets − committed offsets, sampled every ${LAG_SAMPLE_MS} ms during ` +
            `${params.rateSeconds} s of input published by the same process.`,
          boundedNote(onEmbedded, 'embedded'),
          boundedNote(onKafka, 'kafka'),
        ],
      },
      data: { params, ratios: { embedded: e.ratios, kafka: k.ratios }, samples: { onEmbedded, onKafka } },
    }
  } finally {
    await Promise.allSettled([embedded?.close(), kafka?.close()])
    await registry.close()
    await rm(dataDir, { recursive: true, force: true })
  }
}

export const processors: Scenario = {
  name: 'processors',
  description:
    'Processor vs bare consume → produce passthrough, embedded and Kafka: drain rec/s, lag at a fixed rate',
  needsKafka: true,
  run,
}
