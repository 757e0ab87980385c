// The two CoAP servers of the coap-ingest scenario as child processes: `tributary start` (its CoAP
// adapter producing to Kafka) and a bare `coap` server whose handler does nothing but publish the
// same telemetry record through the same bus code and answer 2.04 once Kafka acknowledged it.
// Run directly (`node bench/coap-servers.ts --baseline <json>`), this file is that bare server.
import type { ChildProcess } from 'node:child_process'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { createServer } from 'coap'
import type { IncomingMessage, OutgoingMessage } from 'coap'
import { createIngest } from '../adapters/adapter.ts'
import { loadConfig } from '../core/config/index.ts'
import { topicNames } from '../core/events/topics.ts'
import { silentLogger } from '../core/log.ts'
import { createMetricsRegistry } from '../core/metrics.ts'
import { createApiClient } from '../main/cli/api-client.ts'
import type { ApiClient } from '../main/cli/api-client.ts'
import { createBus } from '../main/bus.ts'
import { BenchError, withTimeout } from './harness.ts'

const CLI = fileURLToPath(new URL('../main/cli.ts', import.meta.url))
const SELF = fileURLToPath(import.meta.url)
const START_TIMEOUT_MS = 90_000
const STOP_TIMEOUT_MS = 20_000
/** The adapter's piggyback wait (adapters/coap/config.ts), so both answer the same way. */
const PIGGYBACK_MS = 500
/** Devices the baseline spreads its records over, as the tributary side sends from as many. */
const BASELINE_DEVICES = 64

export interface CoapServer {
  readonly label: string
  readonly pid: number
  readonly coapPort: number
  tail(): string
  stop(): Promise<void>
}

export interface TributaryCoap extends CoapServer {
  readonly api: ApiClient
}

interface Spawned {
  readonly child: ChildProcess
  readonly lines: string[]
  firstLine(match: (line: string) => boolean, what: string): Promise<string>
  stop(): Promise<void>
}

function spawnServer(label: string, args: string[], env: Record<string, string>): Spawned {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  const watchers = new Set<(line: string) => void>()
  const onLine = (line: string): void => {
    lines.push(line)
    if (lines.length > 200) lines.splice(0, 100)
    for (const watch of [...watchers]) watch(line)
  }
  createInterface({ input: child.stdout }).on('line', onLine)
  createInterface({ input: child.stderr }).on('line', onLine)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return {
    child,
    lines,
    firstLine(match, what) {
      const found = lines.find(match)
      if (found !== undefined) return Promise.resolve(found)
      const waiting = new Promise<string>((resolve, reject) => {
        const watch = (line: string): void => {
          if (!match(line)) return
          watchers.delete(watch)
          resolve(line)
        }
        watchers.add(watch)
        void exited.then(() => {
          if (watchers.delete(watch))
            reject(new BenchError(`${label} exited before ${what}:\n${lines.slice(-15).join('\n')}`))
        })
      })
      return withTimeout(
        waiting,
        START_TIMEOUT_MS,
        () => `${label}: no ${what} within ${START_TIMEOUT_MS} ms`,
      )
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
      await exited
      clearTimeout(timer)
    },
  }
}

export interface TributaryCoapOptions {
  readonly brokers: readonly string[]
  readonly dataDir: string
  readonly topicPrefix: string
  readonly adminToken: string
  readonly env?: Readonly<Record<string, string>> | undefined
}

/** `tributary start --roles adapters,api` on Kafka, every listener on a free loopback port. */
export async function startTributaryCoap(options: TributaryCoapOptions): Promise<TributaryCoap> {
  const proc = spawnServer('tributary', [CLI, 'start', '--roles', 'adapters,api'], {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    TRIBUTARY_HOST: '127.0.0.1',
    TRIBUTARY_DATA_DIR: options.dataDir,
    TRIBUTARY_KAFKA_BROKERS: options.brokers.join(','),
    TRIBUTARY_TOPIC_PREFIX: options.topicPrefix,
    TRIBUTARY_ADMIN_TOKEN: options.adminToken,
    TRIBUTARY_MANAGEMENT_PORT: '0',
    TRIBUTARY_API_PORT: '0',
    TRIBUTARY_MQTT_PORT: '0',
    TRIBUTARY_MQTTS_PORT: '0',
    TRIBUTARY_MQTT_WS_PORT: '0',
    TRIBUTARY_HTTP_PORT: '0',
    TRIBUTARY_COAP_PORT: '0',
    ...options.env,
  })
  let ports: Record<string, number>
  try {
    const line = await proc.firstLine(
      (l) => l.includes('"tributary started"'),
      'its "tributary started" line',
    )
    ports = (JSON.parse(line) as { ports: Record<string, number> }).ports
  } catch (err) {
    await proc.stop()
    throw err
  }
  const coap = ports['coap']
  const api = ports['api']
  if (coap === undefined || api === undefined) {
    await proc.stop()
    throw new BenchError(`tributary started without a coap or api listener (ports ${JSON.stringify(ports)})`)
  }
  return {
    label: 'tributary',
    pid: proc.child.pid!,
    coapPort: coap,
    api: createApiClient({ url: `http://127.0.0.1:${api}`, token: options.adminToken, timeoutMs: 60_000 }),
    tail: () => proc.lines.slice(-15).join('\n'),
    stop: () => proc.stop(),
  }
}

interface BaselineOptions {
  readonly brokers: readonly string[]
  readonly topicPrefix: string
}

/** The bare server in a child process; it publishes to `<topicPrefix>.ingress`. */
export async function startBaseline(options: BaselineOptions): Promise<CoapServer> {
  const proc = spawnServer('coap baseline', [SELF, '--baseline', JSON.stringify(options)], {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
  })
  let port: number
  try {
    const line = await proc.firstLine((l) => l.startsWith('{"listening"'), 'its listening line')
    port = (JSON.parse(line) as { listening: number }).listening
  } catch (err) {
    await proc.stop()
    throw err
  }
  return {
    label: 'coap null handler',
    pid: proc.child.pid!,
    coapPort: port,
    tail: () => proc.lines.slice(-15).join('\n'),
    stop: () => proc.stop(),
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
