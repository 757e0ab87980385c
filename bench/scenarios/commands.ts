// Command round trip through a whole product: API → commands topic → router → queue → dispatcher
// → MQTT device → response → API, p50/p99 at a fixed rate, against raw Kafka request/reply
// (produce, consume and produce the reply, consume it) at the same rate.
import type { EventBus } from '../../core/bus/bus.ts'
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
import { kafkaRoundTrips, startCommandProduct } from '../command-process.ts'
import type { LatencySample } from '../webhook-runs.ts'
import { describeLatency } from '../webhook-runs.ts'

interface Params {
  /** Round trips per second of every run, for `seconds`. */
  readonly rate: number
  readonly seconds: number
  readonly rounds: number
}

const FULL: Params = { rate: 50, seconds: 10, rounds: 3 }
const QUICK: Params = { rate: 50, seconds: 2, rounds: 1 }
const WARMUP_SECONDS = 2

async function run(context: ScenarioContext): Promise<ScenarioResult> {
  const brokers = requireKafka(context)
  const params = scenarioParams(context, { full: FULL, quick: QUICK }, 'rate')
  let kafka: EventBus | undefined
  try {
    kafka = await createKafkaBus({ brokers, clientId: 'tributary-bench' })
    const bus = kafka
    context.progress('starting tributary --roles all')
    const product = await startCommandProduct(brokers, (m) => context.progress(m))
    const seconds = (round: number) => (round < 0 ? WARMUP_SECONDS : params.seconds)
    let result
    try {
      result = await sideBySide<LatencySample>({
        candidate: {
          label: 'API → device → API',
          run: (round) => product.roundTrips(params.rate, seconds(round)),
        },
        baseline: {
          label: 'kafka request → reply',
          run: (round) => kafkaRoundTrips(bus, params.rate, seconds(round)),
        },
        rounds: params.rounds,
        onRun: reportRuns(context, params.rounds, describeLatency),
      })
    } finally {
      await product.close()
    }
    const at = `at ${formatNumber(params.rate)} cmd/s`
    const { rows, ratios } = compareMetrics(result, {
      p50: { label: `round trip p50 ${at} (ms)`, of: (s) => s.stats.p50 },
      p99: { label: `round trip p99 ${at} (ms)`, of: (s) => s.stats.p99 },
    })
    return {
      table: {
        title:
          `commands: API → MQTT device → response → API through tributary vs raw Kafka request/reply, ` +
          `${params.seconds} s at ${formatNumber(params.rate)}/s, median of ${params.rounds} interleaved rounds`,
        columns: ['metric', 'command round trip', 'kafka', 'ratio c/k', 'per-round ratios'],
        rows,
        notes: [
          'tributary start --roles all on Kafka; each command is POST .../commands/echo?wait=10 (64 B) from the ' +
            'bench process; one mqtt.js device in the bench process answers on command/res/<id>/200 at once.',
          'The command path crosses Kafka twice (commands topic, the response on ingress) and the registry ' +
            'database twice (queue, claim); the baseline is two produce → consume hops by bare bus readers.',
        ],
      },
      data: { params, ratios, samples: result },
    }
  } finally {
    await kafka?.close()
  }
}

export const commands: Scenario = {
  name: 'commands',
  description:
    'Command round trip API → MQTT device → API through tributary vs raw Kafka request/reply, p50/p99',
  needsKafka: true,
  run,
}
