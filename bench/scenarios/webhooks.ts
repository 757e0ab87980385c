// Webhook delivery against plain baselines, on the embedded bus and on Kafka: (a) the subscription
// runner delivering a pre-filled tenant topic to a local receiver vs an undici Pool posting the
// same requests (events/s), (b) publish → webhook latency at a fixed rate vs publish → consume by
// a plain bus reader (p50/p99).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { EventBus } from '../../core/bus/bus.ts'
import { createEmbeddedBus } from '../../core/bus/embedded/index.ts'
import { createKafkaBus } from '../../core/bus/kafka.ts'
import type { Scenario, ScenarioContext, ScenarioResult } from '../harness.ts'
import {
  compareMetrics,
  formatNumber,
  reportRuns,
  requireKafka,
  scenarioParams,
  sideBySide,
} from '../harness.ts'
import { PARTITIONS } from '../records.ts'
import type { Receiver } from '../webhook-receiver.ts'
import type { LatencySample, RateEvents, RateSample } from '../webhook-runs.ts'
import { BODY_BYTES } from '../webhook-receiver.ts'
import { IN_FLIGHT, buildRateEvents, busLatency, describeLatency, runnerLatency } from '../webhook-runs.ts'
import { runnerRate, undiciRate } from '../webhook-runs.ts'
import { startReceiver } from '../webhook-receiver.ts'

interface Params {
  /** Events pre-filled and delivered per rate run. */
  readonly events: number
  readonly rounds: number
  readonly warmupEvents: number
  /** Fixed input rate of the latency runs, events per second, for `rateSeconds`. */
  readonly rate: number
  readonly rateSeconds: number
}

const FULL: Params = { events: 20_000, rounds: 3, warmupEvents: 2_000, rate: 200, rateSeconds: 10 }
const QUICK: Params = { events: 1_000, rounds: 1, warmupEvents: 200, rate: 200, rateSeconds: 1 }
/** Warmup latency runs are this long, at the same rate. */
const WARMUP_SECONDS = 1

interface Deps {
  readonly bus: EventBus
  readonly receiver: Receiver
  readonly pool: RateEvents
}

const describeRate = (s: RateSample): string =>
  `${formatNumber(s.eventsPerSec)} events/s (${formatNumber(s.events)} in ${formatNumber(s.ms)} ms)`
async function compareOn(deps: Deps, params: Params, context: ScenarioContext) {
  const { bus, receiver, pool } = deps
  const size = (round: number) => (round < 0 ? params.warmupEvents : params.events)
  const seconds = (round: number) => (round < 0 ? WARMUP_SECONDS : params.rateSeconds)
  const rate = await sideBySide<RateSample>({
    candidate: { label: `${bus.kind} runner`, run: (round) => runnerRate(bus, receiver, pool, size(round)) },
    baseline: { label: `${bus.kind} undici`, run: (round) => undiciRate(receiver, pool, size(round)) },
    rounds: params.rounds,
    onRun: reportRuns(context, params.rounds, describeRate),
  })
  const latency = await sideBySide<LatencySample>({
    candidate: {
      label: `${bus.kind} publish → webhook`,
      run: (round) => runnerLatency(bus, receiver, params.rate, seconds(round)),
    },
    baseline: {
      label: `${bus.kind} publish → consume`,
      run: (round) => busLatency(bus, params.rate, seconds(round)),
    },
    rounds: params.rounds,
    onRun: reportRuns(context, params.rounds, describeLatency),
  })
  const at = `at ${formatNumber(params.rate)} ev/s`
  const rateRows = compareMetrics(rate, {
    eventsPerSec: { label: `${bus.kind}: events/s delivered`, of: (s) => s.eventsPerSec },
  })
  const latencyRows = compareMetrics(latency, {
    p50: { label: `${bus.kind}: latency p50 ${at} (ms)`, of: (s) => s.stats.p50 },
    p99: { label: `${bus.kind}: latency p99 ${at} (ms)`, of: (s) => s.stats.p99 },
  })
  return {
    rows: [...rateRows.rows, ...latencyRows.rows],
    ratios: { ...rateRows.ratios, ...latencyRows.ratios },
    samples: { rate, latency },
  }
}

async function run(context: ScenarioContext): Promise<ScenarioResult> {
  const brokers = requireKafka(context)
  const params = scenarioParams(context, { full: FULL, quick: QUICK }, 'events')
  const dataDir = await mkdtemp(join(tmpdir(), 'tributary-bench-webhooks-'))
  const receiver = await startReceiver()
  const pool = buildRateEvents(Math.max(params.events, params.warmupEvents), receiver.url)
  let embedded: EventBus | undefined
  let kafka: EventBus | undefined
  try {
    embedded = await createEmbeddedBus({ dataDir })
    kafka = await createKafkaBus({ brokers, clientId: 'tributary-bench' })
    const onEmbedded = await compareOn({ bus: embedded, receiver, pool }, params, context)
    const onKafka = await compareOn({ bus: kafka, receiver, pool }, params, context)
    return {
      table: {
        title:
          `webhooks: subscription runner vs undici Pool (rate) and vs a plain bus reader (latency), ` +
          `${formatNumber(params.events)} events of ${BODY_BYTES} B, ${PARTITIONS} partitions, ` +
          `median of ${params.rounds} interleaved rounds`,
        columns: ['metric', 'webhooks', 'baseline', 'ratio w/b', 'per-round ratios'],
        rows: [...onEmbedded.rows, ...onKafka.rows],
        notes: [
          `Rate: the runner (real HTTP sender, signed, binary mode, ${IN_FLIGHT} in flight) reads a ` +
            `pre-filled tenant topic; the baseline is an undici Pool of ${IN_FLIGHT} connections ` +
            `posting the same pre-built requests, ${IN_FLIGHT} at a time; both to a node:http receiver answering 204.`,
          `Latency: publish to the tenant topic → webhook received (runner) vs → handler called ` +
            `(plain bus.subscribe reader); publish time in the body; ${params.rateSeconds} s per run.`,
          'Receiver, runner, readers and publisher share one process.',
          'Device MQTT → webhook through a whole process: the webhooks-process scenario.',
        ],
      },
      data: {
        params,
        ratios: { embedded: onEmbedded.ratios, kafka: onKafka.ratios },
        samples: { onEmbedded: onEmbedded.samples, onKafka: onKafka.samples },
      },
    }
  } finally {
    await Promise.allSettled([embedded?.close(), kafka?.close()])
    await receiver.close()
    await rm(dataDir, { recursive: true, force: true })
  }
}

export const webhooks: Scenario = {
  name: 'webhooks',
  description:
    'Webhook runner vs undici Pool (events/s), publish → webhook vs → consume latency, embedded and Kafka',
  needsKafka: true,
  run,
}
