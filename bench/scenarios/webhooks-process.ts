// Device → webhook through a whole product: `tributary start --roles all` on Kafka, one device
// publishing MQTT QoS 1 at a fixed rate, a subscription made through the API delivering to a local
// receiver; publish → webhook received p50/p99, against raw Kafka produce → consume at the same rate.
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
import { startWebhookProduct } from '../webhook-process.ts'
import { BODY_BYTES, startReceiver } from '../webhook-receiver.ts'
import type { LatencySample } from '../webhook-runs.ts'
import { busLatency, describeLatency } from '../webhook-runs.ts'

interface Params {
  /** Events per second of every run, for `seconds`. */
  readonly rate: number
  readonly seconds: number
  readonly rounds: number
}

const FULL: Params = { rate: 200, seconds: 10, rounds: 3 }
const QUICK: Params = { rate: 200, seconds: 2, rounds: 1 }
/** Warmup runs are this long, at the same rate. */
const WARMUP_SECONDS = 2

async function run(context: ScenarioContext): Promise<ScenarioResult> {
  const brokers = requireKafka(context)
  // --records sets the rate here: the events per second of every run.
  const params = scenarioParams(context, { full: FULL, quick: QUICK }, 'rate')
  const receiver = await startReceiver()
  let kafka: EventBus | undefined
  try {
    kafka = await createKafkaBus({ brokers, clientId: 'tributary-bench' })
    const bus = kafka
    context.progress('starting tributary --roles all')
    const product = await startWebhookProduct(brokers, receiver, (m) => context.progress(m))
    const seconds = (round: number) => (round < 0 ? WARMUP_SECONDS : params.seconds)
    let result
    try {
      result = await sideBySide<LatencySample>({
        candidate: {
          label: 'MQTT QoS 1 → webhook',
          run: (round) => product.latency(params.rate, seconds(round)),
        },
        baseline: {
          label: 'kafka produce → consume',
          run: (round) => busLatency(bus, params.rate, seconds(round)),
        },
        rounds: params.rounds,
        onRun: reportRuns(context, params.rounds, describeLatency),
      })
    } finally {
      await product.close()
    }
    const at = `at ${formatNumber(params.rate)} ev/s`
    const { rows, ratios } = compareMetrics(result, {
      p50: { label: `latency p50 ${at} (ms)`, of: (s) => s.stats.p50 },
      p99: { label: `latency p99 ${at} (ms)`, of: (s) => s.stats.p99 },
    })
    return {
      table: {
        title:
          `webhooks-process: device MQTT QoS 1 → webhook through tributary vs raw Kafka produce → consume, ` +
          `${params.seconds} s at ${formatNumber(params.rate)} ev/s of ${BODY_BYTES} B, ` +
          `median of ${params.rounds} interleaved rounds`,
        columns: ['metric', 'mqtt → webhook', 'kafka', 'ratio w/k', 'per-round ratios'],
        rows,
        notes: [
          'tributary start --roles all on Kafka (adapters, processors, webhook delivery, API in one process); ' +
            'the subscription is made through its API (binary mode, telemetry only) to a node:http receiver ' +
            'answering 204 in the bench process, where the device (one mqtt.js client) publishes too.',
          'The webhook path crosses Kafka twice (ingress, then the tenant topic after the processor); the ' +
            'baseline is one produce → consume by a plain bus reader in the bench process.',
        ],
      },
      data: { params, ratios, samples: result },
    }
  } finally {
    await kafka?.close()
    await receiver.close()
  }
}

export const webhooksProcess: Scenario = {
  name: 'webhooks-process',
  description: 'Device MQTT QoS 1 → webhook through tributary vs raw Kafka produce → consume, p50/p99',
  needsKafka: true,
  run,
}
