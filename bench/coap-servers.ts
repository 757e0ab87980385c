// The two CoAP servers of the coap-ingest scenario as child processes: `tributary start` (its CoAP
// adapter producing to Kafka) and a bare `coap` server whose handler does nothing but publish the
// same telemetry record through the same bus code and answer 2.04 once Kafka acknowledged it.
// Run directly (`node bench/coap-servers.ts --baseline <json>`), this file is that bare server.
import { fileURLToPath } from 'node:url'
import { createServer } from 'coap'
import type { IncomingMessage, OutgoingMessage } from 'coap'
import { createIngest } from '../adapters/adapter.ts'
import { loadConfig } from '../core/config/index.ts'
import { topicNames } from '../core/events/topics.ts'
import { silentLogger } from '../core/log.ts'
import { createMetricsRegistry } from '../core/metrics.ts'
import { createBus } from '../main/bus.ts'
import type { ServerProcess } from './server-process.ts'
import { spawnReady } from './server-process.ts'
import type { TributaryOptions, TributaryProcess } from './tributary-process.ts'
import { startTributary } from './tributary-process.ts'

const SELF = fileURLToPath(import.meta.url)
/** The adapter's piggyback wait (adapters/coap/config.ts), so both answer the same way. */
const PIGGYBACK_MS = 500
/** Devices the baseline spreads its records over, as the tributary side sends from as many. */
const BASELINE_DEVICES = 64

/** Tributary with CoAP the device listener under test. */
export function startCoapTributary(
  options: Omit<TributaryOptions, 'listener' | 'env'>,
): Promise<TributaryProcess> {
  return startTributary({
    ...options,
    listener: 'coap',
    // The default per-device rate (100 msg/s) would be the limit measured, not the adapter; the
    // other device listeners are off so that the process's CPU is the CoAP adapter's.
    env: {
      TRIBUTARY_MQTT_PUBLISH_RATE: '1000000',
      TRIBUTARY_MQTT_ENABLED: 'false',
      TRIBUTARY_MQTT_WS_ENABLED: 'false',
      TRIBUTARY_HTTP_ENABLED: 'false',
    },
  })
}

interface BaselineOptions {
  readonly brokers: readonly string[]
  readonly topicPrefix: string
}

/** The bare server in a child process; it publishes to `<topicPrefix>.ingress`. */
export async function startCoapBaseline(options: BaselineOptions): Promise<ServerProcess> {
  const { proc, line } = await spawnReady(
    'coap baseline',
    [process.execPath, SELF, '--baseline', JSON.stringify(options)],
    { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
    { match: (l) => l.startsWith('{"listening"'), what: 'its listening line' },
  )
  return {
    label: 'coap null handler',
    pid: proc.child.pid!,
    port: (JSON.parse(line) as { listening: number }).listening,
    tail: proc.tail,
    stop: proc.stop,
  }
}

/** The baseline's process: the bus as tributary builds it, the default ingest, no checks at all. */
async function serveBaseline(options: BaselineOptions): Promise<void> {
  const config = loadConfig({
    TRIBUTARY_KAFKA_BROKERS: options.brokers.join(','),
    TRIBUTARY_TOPIC_PREFIX: options.topicPrefix,
  })
  const bus = await createBus(config, silentLogger, createMetricsRegistry())
  const ingest = createIngest({ bus, topics: topicNames(config.topicPrefix), log: silentLogger })
  const server = createServer({ piggybackReplyMs: PIGGYBACK_MS, reuseAddr: false })
  let n = 0
  server.on('request', (req: IncomingMessage, res: OutgoingMessage) => {
    ingest
      .publish({
        tenant: 'bench',
        device: `device-${n++ % BASELINE_DEVICES}`,
        protocol: 'coap',
        channel: 'bench/telemetry',
        payload: req.payload,
        contentType: 'application/octet-stream',
      })
      .then(
        (outcome) => {
          res.code = outcome.kind === 'accepted' ? '2.04' : '5.03'
          res.end()
        },
        () => {
          res.code = '5.00'
          res.end()
        },
      )
  })
  server.listen(0, '127.0.0.1', () => {
    const address = (server._sock as { address(): { port: number } }).address()
    process.stdout.write(`${JSON.stringify({ listening: address.port })}\n`)
  })
  process.once('SIGTERM', () => {
    server.close()
    void bus.close().then(() => process.exit(0))
  })
}

if (process.argv[1] === SELF && process.argv[2] === '--baseline') {
  serveBaseline(JSON.parse(process.argv[3] ?? '{}') as BaselineOptions).catch((err: unknown) => {
    console.error(err)
    process.exit(1)
  })
}
