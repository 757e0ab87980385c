// The two HTTP servers of the http-ingest bench as child processes: a `tributary start` process
// with only its device HTTP listener (producing to Kafka), and the bare node:http baseline
// (bench/http-baseline.ts) producing the same records with the same Kafka bus code.
import type { ChildProcess } from 'node:child_process'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { createApiClient } from '../main/cli/api-client.ts'
import type { ApiClient } from '../main/cli/api-client.ts'
import { BenchError, withTimeout } from './harness.ts'
import type { BenchKafka } from './mqtt-servers.ts'

const CLI = fileURLToPath(new URL('../main/cli.ts', import.meta.url))
const BASELINE = fileURLToPath(new URL('http-baseline.ts', import.meta.url))
const START_TIMEOUT_MS = 60_000

export interface HttpServer {
  readonly label: string
  readonly pid: number
  readonly port: number
  /** Records on the topic this server writes to. */
  records(): Promise<number>
  tail(): string
  stop(): Promise<void>
}

/** Spawns `args`, collects its output, resolves once `ready` matches a line (bounded). */
async function spawnServer(
  label: string,
  args: string[],
  env: Record<string, string>,
  ready: (line: string) => number | undefined,
) {
  const child: ChildProcess = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: string[] = []
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const port = new Promise<number>((resolve, reject) => {
    const onLine = (line: string): void => {
      lines.push(line)
      if (lines.length > 200) lines.splice(0, 100)
      const found = ready(line)
      if (found !== undefined) resolve(found)
    }
    createInterface({ input: child.stdout! }).on('line', onLine)
    createInterface({ input: child.stderr! }).on('line', onLine)
    void exited.then(() =>
      reject(new BenchError(`${label} exited before it was ready:\n${lines.slice(-15).join('\n')}`)),
    )
  })
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    await exited
    clearTimeout(timer)
  }
  try {
    return {
      child,
      lines,
      stop,
      port: await withTimeout(port, START_TIMEOUT_MS, `${label}: not ready within ${START_TIMEOUT_MS} ms`),
    }
  } catch (err) {
    await stop()
    throw err
  }
}

/** `tributary start --roles adapters,api` on Kafka with only the device HTTP listener; its API client. */
export async function startTributaryHttp(
  brokers: string[],
  prefix: string,
  dataDir: string,
  kafka: BenchKafka,
): Promise<{ server: HttpServer; api: ApiClient }> {
  const adminToken = randomBytes(24).toString('base64url')
  let ports: Record<string, number> = {}
  const proc = await spawnServer(
    'tributary',
    [CLI, 'start', '--roles', 'adapters,api'],
    {
      TRIBUTARY_HOST: '127.0.0.1',
      TRIBUTARY_DATA_DIR: dataDir,
      TRIBUTARY_KAFKA_BROKERS: brokers.join(','),
      TRIBUTARY_TOPIC_PREFIX: prefix,
      TRIBUTARY_ADMIN_TOKEN: adminToken,
      TRIBUTARY_MANAGEMENT_PORT: '0',
      TRIBUTARY_API_PORT: '0',
      TRIBUTARY_HTTP_PORT: '0',
      TRIBUTARY_TOPIC_PARTITIONS: '6',
      // Only the listener under test runs.
      TRIBUTARY_MQTT_ENABLED: 'false',
      TRIBUTARY_MQTTS_ENABLED: 'false',
      TRIBUTARY_MQTT_WS_ENABLED: 'false',
      TRIBUTARY_COAP_ENABLED: 'false',
      // The default per-device rate (100 msg/s) would be the limit measured, not the adapter.
      TRIBUTARY_MQTT_PUBLISH_RATE: '1000000',
    },
    (line) => {
      if (!line.includes('"tributary started"')) return undefined
      ports = (JSON.parse(line) as { ports: Record<string, number> }).ports
      return ports['http']
    },
  )
  if (ports['api'] === undefined) {
    await proc.stop()
    throw new BenchError(`tributary started without an api listener: ${JSON.stringify(ports)}`)
  }
  const server: HttpServer = {
    label: 'tributary',
    pid: proc.child.pid!,
    port: proc.port,
    records: () => kafka.ingressRecords(prefix),
    tail: () => proc.lines.slice(-15).join('\n'),
    stop: proc.stop,
  }
  return {
    server,
    api: createApiClient({ url: `http://127.0.0.1:${ports['api']}`, token: adminToken, timeoutMs: 60_000 }),
  }
}

/** The bare node:http baseline, writing to `<prefix>.ingress`. */
export async function startBaseline(
  brokers: string[],
  prefix: string,
  devicesFile: string,
  kafka: BenchKafka,
): Promise<HttpServer> {
  const proc = await spawnServer(
    'node:http',
    [BASELINE],
    { BENCH_BROKERS: brokers.join(','), BENCH_TOPIC: `${prefix}.ingress`, BENCH_DEVICES: devicesFile },
    (line) => (line.startsWith('listening ') ? Number(line.slice('listening '.length)) : undefined),
  )
  return {
    label: 'node:http',
    pid: proc.child.pid!,
    port: proc.port,
    records: () => kafka.ingressRecords(prefix),
    tail: () => proc.lines.slice(-15).join('\n'),
    stop: proc.stop,
  }
}
