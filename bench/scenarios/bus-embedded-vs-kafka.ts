// The EventBus port on its two implementations: the embedded file log and Kafka. Each run
// publishes N records to a fresh topic (batched calls, several in flight), consumes them all with a
// new consumer group, then times single-record publishes one after the other.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { EventBus, OutgoingRecord } from '../../core/bus/bus.ts'
import { createEmbeddedBus } from '../../core/bus/embedded/index.ts'
import { createKafkaBus } from '../../core/bus/kafka.ts'
import type { Scenario, ScenarioContext, ScenarioResult, Stats } from '../harness.ts'
import {
  BenchError,
  compareMetrics,
  formatNumber,
  opsPerSecond,
  ratioOf,
  repeat,
  reportRuns,
  requireKafka,
  runConcurrently,
  scenarioParams,
  sideBySide,
  timed,
  withTimeout,
} from '../harness.ts'
import type { BenchRecord } from '../records.ts'
import { PARTITIONS, VALUE_BYTES, buildRecords, headerBytes, uniqueName } from '../records.ts'

interface Params {
  /** Records published and consumed per run. */
  readonly records: number
  readonly recordsPerCall: number
  /** Publish calls in flight at once. */
  readonly concurrency: number
  /** Single-record publishes timed per run (after a few untimed ones). */
  readonly latencySamples: number
  readonly rounds: number
  /** Records of the warmup round (interleaved like the others, thrown away). */
  readonly warmupRecords: number
}

const FULL: Params = {
  records: 100_000,
  recordsPerCall: 100,
  concurrency: 4,
  latencySamples: 1_000,
  rounds: 5,
  warmupRecords: 10_000,
}
const QUICK: Params = { ...FULL, records: 10_000, latencySamples: 200, rounds: 3, warmupRecords: 2_000 }

const LATENCY_WARMUP = 20
const CONSUME_TIMEOUT_MS = 120_000

export interface BusSample {
  readonly topic: string
  readonly publish: { readonly records: number; readonly ms: number; readonly recordsPerSec: number }
  readonly consume: {
    readonly records: number
    /** subscribe() called → every record handled. */
    readonly ms: number
    /** subscribe() called → subscribe() resolved (joined, first assignment held). */
    readonly joinMs: number
    /** subscribe() called → first batch handed to the handler. */
    readonly firstBatchMs: number
    /** records / ms: end to end, joining the group included. */
    readonly recordsPerSec: number
    /** records / (ms − joinMs): reading once the member holds its partitions. */
    readonly afterJoinRecordsPerSec: number
    /** Records handled more than once (at-least-once redelivery); 0 expected. */
    readonly duplicates: number
  }
  readonly latency: Stats & { readonly samplesMs: number[] }
}

async function runOnce(
  bus: EventBus,
  pool: readonly BenchRecord[],
  records: number,
  params: Params,
  latencySamples: number,
): Promise<BusSample> {
  const topic = uniqueName(`bus-${bus.kind}`)
  await bus.admin.createTopics([{ name: topic, partitions: PARTITIONS }])
  try {
    const outgoing: OutgoingRecord[] = pool.map((r) => ({
      topic,
      key: r.key,
      value: r.value,
      headers: r.headers,
    }))
    const calls: OutgoingRecord[][] = []
    for (let start = 0; start < records; start += params.recordsPerCall) {
      const call: OutgoingRecord[] = []
      for (let i = start; i < Math.min(records, start + params.recordsPerCall); i++) {
        call.push(outgoing[i % outgoing.length]!)
      }
      calls.push(call)
    }

    // 1. Publish throughput: batched calls, `concurrency` of them in flight.
    const published = await timed(() =>
      runConcurrently(calls.length, params.concurrency, (i) => bus.publish(calls[i]!)),
    )
    const stored = (await bus.admin.offsets(topic)).reduce((sum, p) => sum + p.next - p.earliest, 0)
    if (stored !== records) {
      throw new BenchError(`${bus.kind} bus: published ${records} records but the topic holds ${stored}`)
    }

    // 2. Consume them all with a new consumer group, from the earliest offset.
    let handled = 0
    let firstBatchAt: number | undefined
    const all = Promise.withResolvers<void>()
    const start = performance.now()
    const subscription = await bus.subscribe({
      group: uniqueName('group'),
      topics: [topic],
      from: 'earliest',
      handler: async (batch) => {
        firstBatchAt ??= performance.now()
        handled += batch.length
        if (handled >= records) all.resolve()
      },
    })
    const joinedAt = performance.now()
    try {
      await withTimeout(
        all.promise,
        CONSUME_TIMEOUT_MS,
        () => `${bus.kind} bus: only ${handled} of ${records} records consumed in ${CONSUME_TIMEOUT_MS} ms`,
      )
    } finally {
      await subscription.close()
    }
    const consumedMs = performance.now() - start
    const joinMs = joinedAt - start

    // 3. Latency of single-record publishes, one after the other (nothing to share a write with).
    let next = 0
    const latency = await repeat(
      async () => {
        await bus.publish([outgoing[next++ % outgoing.length]!])
      },
      { warmup: LATENCY_WARMUP, runs: latencySamples },
    )

    return {
      topic,
      publish: {
        records,
        ms: published.ms,
        recordsPerSec: opsPerSecond(records, published.ms),
      },
      consume: {
        records,
        ms: consumedMs,
        joinMs,
        firstBatchMs: (firstBatchAt ?? Number.NaN) - start,
        recordsPerSec: opsPerSecond(records, consumedMs),
        afterJoinRecordsPerSec: opsPerSecond(records, consumedMs - joinMs),
        duplicates: handled - records,
      },
      latency: { ...latency.stats, samplesMs: latency.samples },
    }
  } finally {
    await bus.admin.deleteTopics([topic])
  }
}

function describeSample(s: BusSample): string {
  return (
    `publish ${formatNumber(s.publish.recordsPerSec)} rec/s, ` +
    `consume ${formatNumber(s.consume.recordsPerSec)} rec/s (join ${formatNumber(s.consume.joinMs)} ms), ` +
    `single publish p50 ${formatNumber(s.latency.p50)} ms p99 ${formatNumber(s.latency.p99)} ms`
  )
}

async function run(context: ScenarioContext): Promise<ScenarioResult> {
  const brokers = requireKafka(context)
  const params = scenarioParams(context, { full: FULL, quick: QUICK }, 'records')
  const pool = buildRecords()
  const dataDir = await mkdtemp(join(tmpdir(), 'tributary-bench-'))
  let embedded: EventBus | undefined
  let kafka: EventBus | undefined
  try {
    embedded = await createEmbeddedBus({ dataDir })
    kafka = await createKafkaBus({ brokers, clientId: 'tributary-bench' })
    const contender = (bus: EventBus) => ({
      label: bus.kind,
      run: (round: number) =>
        round < 0
          ? runOnce(bus, pool, Math.min(params.warmupRecords, params.records), params, 50)
          : runOnce(bus, pool, params.records, params, params.latencySamples),
    })
    const result = await sideBySide({
      candidate: contender(embedded),
      baseline: contender(kafka),
      rounds: params.rounds,
      warmupRounds: 1,
      onRun: reportRuns(context, params.rounds, describeSample),
    })
    const { ratios, rows } = compareMetrics(result, {
      publishRecordsPerSec: {
        label: `publish rec/s (${params.recordsPerCall}/call, ${params.concurrency} in flight)`,
        of: (s) => s.publish.recordsPerSec,
      },
      consumeRecordsPerSec: {
        label: 'consume rec/s, end to end (join included)',
        of: (s) => s.consume.recordsPerSec,
      },
      joinMs: { label: 'group join ms (subscribe() resolved)', of: (s) => s.consume.joinMs },
      firstBatchMs: {
        label: 'first records ms (subscribe() → first batch)',
        of: (s) => s.consume.firstBatchMs,
      },
      publishLatencyP50Ms: {
        label: `single-record publish p50 ms (n=${params.latencySamples})`,
        of: (s) => s.latency.p50,
      },
      publishLatencyP99Ms: {
        label: `single-record publish p99 ms (n=${params.latencySamples})`,
        of: (s) => s.latency.p99,
      },
    })
    // In the JSON file only: the table's consume row is end to end.
    const consumeAfterJoinRecordsPerSec = ratioOf(result, (s) => s.consume.afterJoinRecordsPerSec)
    const duplicates = [...result.candidate.samples, ...result.baseline.samples].reduce(
      (sum, s) => sum + s.consume.duplicates,
      0,
    )
    const sample = pool[0]!
    return {
      table: {
        title:
          `bus-embedded-vs-kafka: ${formatNumber(params.records)} records of ${VALUE_BYTES} B ` +
          `(+${headerBytes(sample)} B of CloudEvent headers), ${PARTITIONS} partitions, ` +
          `median of ${params.rounds} interleaved rounds`,
        columns: ['metric', 'embedded', 'kafka', 'ratio e/k', 'per-round ratios'],
        rows,
        notes: [
          'ratio = median(embedded) / median(kafka); for ms rows lower is better, for rec/s higher is better.',
          ...(duplicates > 0 ? [`${duplicates} records were delivered more than once`] : []),
        ],
      },
      data: {
        params,
        order: result.order,
        ratios: { ...ratios, consumeAfterJoinRecordsPerSec },
        samples: result,
      },
    }
  } finally {
    await Promise.allSettled([embedded?.close(), kafka?.close()])
    await rm(dataDir, { recursive: true, force: true })
  }
}

export const busEmbeddedVsKafka: Scenario = {
  name: 'bus-embedded-vs-kafka',
  description:
    'EventBus port: embedded file log vs Kafka; batched publish throughput, consumer-group read, single-publish latency',
  needsKafka: true,
  run,
}
