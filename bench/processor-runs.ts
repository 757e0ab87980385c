// The runs of the processors scenario, each on fresh topics of one bus: draining a pre-filled
// ingress topic, and the consumer lag while events arrive at a fixed rate — for the real processor
// and for a bare consume → produce passthrough, so that the two differ only in the processing.
import { setTimeout as sleep } from 'node:timers/promises'
import type { EventBus, OutgoingRecord, SubscribeOptions } from '../core/bus/bus.ts'
import { createMemoryCluster } from '../core/cluster/memory.ts'
import { topicNames } from '../core/events/topics.ts'
import { silentLogger } from '../core/log.ts'
import type { RegistryAuth } from '../core/registry/auth.ts'
import { createProcessor } from '../processors/index.ts'
import type { Stats } from './harness.ts'
import { BenchError, opsPerSecond, runConcurrently, summarize, withTimeout } from './harness.ts'
import type { BenchRecord } from './records.ts'
import { PARTITIONS, uniqueName } from './records.ts'

export type Kind = 'processor' | 'passthrough'

/** The tenant of the benchmark records (bench/records.ts). */
export const BENCH_TENANT = 'bench'
export const LAG_SAMPLE_MS = 250
/** The lag counts as bounded when it is back to 0 within this long after the input stopped. */
export const BOUNDED_DRAIN_MS = 2_000
const PRODUCE_TICK_MS = 20
const PREFILL_PER_CALL = 500
const DRAIN_TIMEOUT_MS = 120_000

export interface DrainSample {
  readonly records: number
  /** consumer started → every output record durable. */
  readonly ms: number
  /** consumer started → joined its group and holding its partitions. */
  readonly joinMs: number
  readonly recordsPerSec: number
  readonly afterJoinRecordsPerSec: number
}

export interface LagSample {
  readonly inputRecords: number
  readonly inputPerSec: number
  /** Records behind (end offsets − committed), sampled every LAG_SAMPLE_MS while the input ran. */
  readonly samples: number[]
  readonly stats: Stats
  /** Input stopped → lag 0; NaN when it was not 0 within the drain timeout. */
  readonly drainMs: number
  readonly bounded: boolean
}

export interface RunDeps {
  readonly bus: EventBus
  readonly auth: RegistryAuth
  readonly pool: readonly BenchRecord[]
}

/** Publishes counted at the bus port: durable output records, and dead letters (there must be none). */
function countingBus(bus: EventBus, group: string, out: string) {
  const state = { out: 0, dead: 0, wanted: Number.POSITIVE_INFINITY, done: Promise.withResolvers<void>() }
  const counted: EventBus = Object.create(bus) as EventBus
  Object.assign(counted, {
    // Each run (processor or passthrough) consumes in a group of its own, read back for the lag.
    subscribe: (options: SubscribeOptions) => bus.subscribe({ ...options, group }),
    publish: async (records: readonly OutgoingRecord[]) => {
      const acks = await bus.publish(records)
      for (const r of records) {
        if (r.topic === out) state.out++
        else state.dead++
      }
      if (state.out >= state.wanted) state.done.resolve()
      return acks
    },
  })
  return { bus: counted, state }
}

/** Fresh topics for one run: the ingress, the dead letter and the output topic. */
async function freshTopics(bus: EventBus, kind: Kind) {
  const prefix = uniqueName(`proc-${bus.kind}`)
  const topics = topicNames(prefix)
  const out = kind === 'processor' ? topics.events(BENCH_TENANT) : `${prefix}.passthrough`
  // The processor also reads the registry topic (changes pass through to tenant topics); it stays empty here.
  const names = [topics.ingress, topics.registry, topics.deadletter, out]
  await bus.admin.createTopics(names.map((name) => ({ name, partitions: PARTITIONS })))
  return { topics, out, remove: () => bus.admin.deleteTopics(names) }
}

type Topics = Awaited<ReturnType<typeof freshTopics>>

/** Starts the processor, or the passthrough (same group options, batch size and bus); resolves once joined. */
async function startConsumer(kind: Kind, bus: EventBus, run: Topics, auth: RegistryAuth) {
  if (kind === 'processor') {
    const processor = createProcessor(
      { topics: run.topics, topicPartitions: PARTITIONS },
      { bus, auth, cluster: createMemoryCluster({ log: silentLogger }), log: silentLogger },
    )
    await processor.start()
    return () => processor.stop()
  }
  const subscription = await bus.subscribe({
    group: 'passthrough',
    topics: [run.topics.ingress],
    from: 'earliest',
    handler: async (batch) => {
      await bus.publish(
        batch.map((m) => ({ topic: run.out, key: m.key, value: m.value, headers: m.headers })),
      )
    },
  })
  return () => subscription.close()
}

const ingressRecord = (topic: string, r: BenchRecord): OutgoingRecord => ({
  topic,
  key: r.key,
  value: r.value,
  headers: r.headers,
})

/** Pre-fills the ingress topic with `records`, then times the consumer draining them to its output. */
export async function drainRun(deps: RunDeps, kind: Kind, records: number): Promise<DrainSample> {
  const { bus, pool } = deps
  const run = await freshTopics(bus, kind)
  try {
    await runConcurrently(Math.ceil(records / PREFILL_PER_CALL), 4, (call) => {
      const batch: OutgoingRecord[] = []
      const end = Math.min(records, (call + 1) * PREFILL_PER_CALL)
      for (let i = call * PREFILL_PER_CALL; i < end; i++) {
        batch.push(ingressRecord(run.topics.ingress, pool[i % pool.length]!))
      }
      return bus.publish(batch)
    })
    const counting = countingBus(bus, uniqueName('group'), run.out)
    counting.state.wanted = records
    const start = performance.now()
    const stop = await startConsumer(kind, counting.bus, run, deps.auth)
    const joinMs = performance.now() - start
    try {
      await withTimeout(
        counting.state.done.promise,
        DRAIN_TIMEOUT_MS,
        () =>
          `${bus.kind} ${kind}: ${counting.state.out} of ${records} records out in ${DRAIN_TIMEOUT_MS} ms`,
      )
    } finally {
      await stop()
    }
    const ms = performance.now() - start
    if (counting.state.dead > 0)
      throw new BenchError(`${bus.kind} ${kind}: ${counting.state.dead} dead letters`)
    return {
      records,
      ms,
      joinMs,
      recordsPerSec: opsPerSecond(records, ms),
      afterJoinRecordsPerSec: opsPerSecond(records, ms - joinMs),
    }
  } finally {
    await run.remove()
  }
}

/**
 * Publishes `rate` events per second for `seconds` while the consumer runs, sampling its lag, then
 * measures how long the lag takes to reach 0 once the input stopped.
 */
export async function lagRun(deps: RunDeps, kind: Kind, rate: number, seconds: number): Promise<LagSample> {
  const { bus, pool } = deps
  const run = await freshTopics(bus, kind)
  const group = uniqueName('group')
  const counting = countingBus(bus, group, run.out)
  const lagNow = async (): Promise<number> => {
    const [ends, committed] = await Promise.all([
      bus.admin.offsets(run.topics.ingress),
      bus.admin.committed(group, run.topics.ingress),
    ])
    return ends.reduce((sum, p) => sum + p.next - (committed.get(p.partition) ?? p.earliest), 0)
  }
  const stop = await startConsumer(kind, counting.bus, run, deps.auth)
  try {
    const samples: number[] = []
    const producing = new AbortController()
    const sampler = (async () => {
      while (!producing.signal.aborted) {
        const next = performance.now() + LAG_SAMPLE_MS
        samples.push(await lagNow())
        await sleep(Math.max(0, next - performance.now()), undefined, { signal: producing.signal }).catch(
          () => undefined,
        )
      }
    })()
    // Fixed rate: each tick publishes, in one call, what has come due since the start.
    const total = rate * seconds
    const start = performance.now()
    let sent = 0
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000))
      const batch: OutgoingRecord[] = []
      for (; sent < due; sent++) batch.push(ingressRecord(run.topics.ingress, pool[sent % pool.length]!))
      if (batch.length > 0) await bus.publish(batch)
      await sleep(PRODUCE_TICK_MS)
    }
    const stoppedAt = performance.now()
    producing.abort()
    await sampler
    let drainMs = Number.NaN
    while (performance.now() - stoppedAt < DRAIN_TIMEOUT_MS) {
      if ((await lagNow()) === 0) {
        drainMs = performance.now() - stoppedAt
        break
      }
      await sleep(10)
    }
    if (counting.state.dead > 0)
      throw new BenchError(`${bus.kind} ${kind}: ${counting.state.dead} dead letters`)
    // Lag 0 means every input offset is committed, and a commit follows its durable output.
    if (Number.isFinite(drainMs) && counting.state.out < total) {
      throw new BenchError(
        `${bus.kind} ${kind}: lag 0 but only ${counting.state.out} of ${total} records out`,
      )
    }
    return {
      inputRecords: total,
      inputPerSec: opsPerSecond(total, stoppedAt - start),
      samples,
      stats: summarize(samples),
      drainMs,
      bounded: drainMs <= BOUNDED_DRAIN_MS,
    }
  } finally {
    await stop()
    await run.remove()
  }
}
