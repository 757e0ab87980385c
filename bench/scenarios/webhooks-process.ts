// Device → application through a whole product: `tributary start --roles all` on Kafka, one device
// publishing MQTT QoS 1 at a fixed rate; publish → webhook received (a subscription made through the
// API, to a local receiver), then publish → WebSocket message received (the tenant's event stream),
// each p50/p99 against raw Kafka produce → consume at the same rate.
import type { EventBus } from '../../core/bus/bus.ts'
import { createKafkaBus } from '../../core/bus/kafka.ts'
import type { Contender, Scenario, ScenarioContext, ScenarioResult, SideBySide } from '../harness.ts'
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
    // Each path runs against its own interleaved Kafka runs, so that drift hits both of a pair.
    const against = (candidate: Contender<LatencySample>) =>
      sideBySide<LatencySample>({
        candidate,
        baseline: {
          label: 'kafka produce → consume',
          run: (round) => busLatency(bus, params.rate, seconds(round)),
        },
        rounds: params.rounds,
        onRun: reportRuns(context, params.rounds, describeLatency),
      })
    let webhook: SideBySide<LatencySample>
    let websocket: SideBySide<LatencySample>
    try {
      webhook = await against({
        label: 'MQTT QoS 1 → webhook',
        run: (round) => product.webhookLatency(params.rate, seconds(round)),
      })
      context.progress('deleting the subscription; opening the WebSocket')
      await product.openWebSocket()
      websocket = await against({
        label: 'MQTT QoS 1 → WebSocket',
        run: (round) => product.websocketLatency(params.rate, seconds(round)),
      })
    } finally {
      await product.close()
    }
    const at = `at ${formatNumber(params.rate)} ev/s`
    const compare = (path: string, result: SideBySide<LatencySample>) =>
      compareMetrics(result, {
        p50: { label: `${path}: latency p50 ${at} (ms)`, of: (s) => s.stats.p50 },
        p99: { label: `${path}: latency p99 ${at} (ms)`, of: (s) => s.stats.p99 },
      })
    const onWebhook = compare('webhook', webhook)
    const onWebSocket = compare('websocket', websocket)
    return {
      table: {
        title:
          `webhooks-process: device MQTT QoS 1 → webhook and → WebSocket through tributary vs raw Kafka ` +
          `produce → consume, ${params.seconds} s at ${formatNumber(params.rate)} ev/s of ${BODY_BYTES} B, ` +
          `median of ${params.rounds} interleaved rounds`,
        columns: ['metric', 'mqtt → app', 'kafka', 'ratio a/k', 'per-round ratios'],
        rows: [...onWebhook.rows, ...onWebSocket.rows],
        notes: [
          'tributary start --roles all on Kafka (adapters, processors, webhook delivery, API in one process); ' +
            'the device (one mqtt.js client) publishes from the bench process.',
          'webhook: a subscription made through the API (binary mode, telemetry only) to a node:http receiver ' +
            'answering 204 in the bench process. websocket: the subscription deleted, one ws client in the ' +
            'bench process on /api/v1/tenants/{t}/events (cloudevents.json, a reader API token, type=telemetry); ' +
            'latency to the message event. Each path is measured alone.',
          'Both paths cross Kafka twice (ingress, then the tenant topic after the processor); the baseline ' +
            'is one produce → consume by a plain bus reader in the bench process, run next to each path.',
        ],
      },
      data: {
        params,
        ratios: { webhook: onWebhook.ratios, websocket: onWebSocket.ratios },
        samples: { webhook, websocket },
      },
    }
  } finally {
    await kafka?.close()
    await receiver.close()
  }
}

export const webhooksProcess: Scenario = {
  name: 'webhooks-process',
  description:
    'Device MQTT QoS 1 → webhook and → WebSocket through tributary vs raw Kafka produce → consume, p50/p99',
  needsKafka: true,
  run,
}
