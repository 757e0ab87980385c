// Vitest global setup for the contract, integration and e2e tiers: finds or starts each service
// the tests talk to and hands its address to the tests (inject('kafkaBrokers') etc.).
// One service = one function below that returns the values to provide and how to stop it.
import { connect } from 'node:net'
import type { ProvidedContext } from 'vitest'
import type { TestProject } from 'vitest/node'
import { probeKafka, runningLocalKafka, startLocalKafka } from '../../scripts/kafka.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    /** bootstrap address; '' when Kafka could not be had (outside CI only; see kafkaProblem) */
    kafkaBrokers: string
    /** where the broker came from, for the log line and for tests that care */
    kafkaSource: string
    /** why there is no broker, or '' */
    kafkaProblem: string
    databaseUrl: string
    redisUrl: string
    /** S3-compatible endpoint; '' when none could be had (outside CI only; see s3Problem) */
    s3Endpoint: string
    s3Region: string
    s3AccessKeyId: string
    s3SecretAccessKey: string
    s3Problem: string
  }
}

interface Started {
  values: Partial<ProvidedContext>
  stop?: () => Promise<void>
}
type Service = () => Promise<Started>

const inCi = (): boolean => process.env.CI === 'true' || process.env.CI === '1'

/** Resolves when something accepts a TCP connection on host:port, else rejects with the reason. */
function answers(host: string, port: number, timeoutMs = 2_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, timeout: timeoutMs })
    socket.once('connect', () => {
      socket.destroy()
      resolve()
    })
    socket.once('timeout', () => {
      socket.destroy()
      reject(new Error(`no answer within ${timeoutMs} ms`))
    })
    socket.once('error', reject)
  })
}

/** A service reached over TCP at a URL from `variable` (or its default); throws how to start it. */
async function tcpService(variable: string, fallback: string, defaultPort: number, howToStart: string) {
  const url = process.env[variable] || fallback
  const { hostname, port } = new URL(url)
  const host = hostname.replace(/^\[|\]$/g, '') || '127.0.0.1'
  try {
    await answers(host, Number(port || defaultPort))
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    throw new Error(
      `${variable}=${url}: nothing answers on ${host}:${port || defaultPort} (${reason}). ` +
        `Start it (${howToStart}) or set ${variable} to a running server.`,
      { cause: err },
    )
  }
  return url
}

const postgres: Service = async () => ({
  values: {
    databaseUrl: await tcpService(
      'TEST_DATABASE_URL',
      'postgres://postgres@127.0.0.1:5432/test',
      5432,
      'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
    ),
  },
})

const redis: Service = async () => ({
  values: {
    redisUrl: await tcpService(
      'TEST_REDIS_URL',
      'redis://127.0.0.1:6379',
      6379,
      'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ""',
    ),
  },
})

/** KAFKA_BROKERS → a container when a Docker engine answers → the local Maven-resolved broker. */
async function findKafka(): Promise<Started> {
  const fromEnv = process.env.KAFKA_BROKERS
  if (fromEnv) {
    const problem = await probeKafka(fromEnv, 5_000)
    if (problem !== undefined) {
      throw new Error(
        `KAFKA_BROKERS=${fromEnv} does not answer metadata: ${problem} (unset it to let the tests start Kafka)`,
      )
    }
    return { values: { kafkaBrokers: fromEnv, kafkaSource: 'KAFKA_BROKERS' } }
  }
  const container = await import('../../scripts/kafka/container.ts')
  const engineProblem = await container.containerEngineProblem()
  if (engineProblem === undefined) {
    const kafka = await container.startKafkaContainer()
    return { values: { kafkaBrokers: kafka.brokers, kafkaSource: container.KAFKA_IMAGE }, stop: kafka.stop }
  }
  const running = await runningLocalKafka()
  if (running !== undefined) {
    return { values: { kafkaBrokers: running, kafkaSource: 'local broker from npm run kafka:start' } }
  }
  const kafka = await startLocalKafka()
  return {
    values: { kafkaBrokers: kafka.brokers, kafkaSource: 'local broker started for this run' },
    stop: kafka.stop,
  }
}

const kafka: Service = async () => {
  try {
    const started = await findKafka()
    return { ...started, values: { ...started.values, kafkaProblem: '' } }
  } catch (err) {
    // In CI a missing broker fails the run. Locally the tests that need Kafka fail with this
    // reason (test/setup/kafka-env.ts) while the others still run.
    if (inCi()) throw err
    const problem = err instanceof Error ? err.message : String(err)
    console.error(`\n[services] Kafka unavailable; tests that need it will fail:\n${problem}\n`)
    return { values: { kafkaBrokers: '', kafkaSource: 'unavailable', kafkaProblem: problem } }
  }
}

/** TEST_S3_ENDPOINT (with TEST_S3_ACCESS_KEY_ID and TEST_S3_SECRET_ACCESS_KEY) → a local S3Proxy. */
async function findS3(): Promise<Started> {
  const endpoint = process.env.TEST_S3_ENDPOINT
  if (endpoint) {
    const { hostname, port, protocol } = new URL(endpoint)
    await answers(hostname.replace(/^\[|\]$/g, ''), Number(port || (protocol === 'https:' ? 443 : 80)))
    return {
      values: {
        s3Endpoint: endpoint,
        s3Region: process.env.TEST_S3_REGION || 'us-east-1',
        s3AccessKeyId: process.env.TEST_S3_ACCESS_KEY_ID ?? '',
        s3SecretAccessKey: process.env.TEST_S3_SECRET_ACCESS_KEY ?? '',
      },
    }
  }
  const { startS3Proxy } = await import('../../scripts/s3proxy.ts')
  const s3 = await startS3Proxy()
  return {
    values: {
      s3Endpoint: s3.endpoint,
      s3Region: s3.region,
      s3AccessKeyId: s3.accessKeyId,
      s3SecretAccessKey: s3.secretAccessKey,
    },
    stop: () => s3.stop(),
  }
}

const s3: Service = async () => {
  try {
    const started = await findS3()
    return { ...started, values: { ...started.values, s3Problem: '' } }
  } catch (err) {
    if (inCi()) throw err
    const problem = err instanceof Error ? err.message : String(err)
    console.error(`\n[services] S3 unavailable; tests that need it will fail:\n${problem}\n`)
    return {
      values: { s3Endpoint: '', s3Region: '', s3AccessKeyId: '', s3SecretAccessKey: '', s3Problem: problem },
    }
  }
}

// Cheap checks first, so a missing database fails before a broker is started for nothing.
const SERVICES: Service[] = [postgres, redis, kafka, s3]

async function startAll(): Promise<Started[]> {
  const started: Started[] = []
  try {
    for (const service of SERVICES) started.push(await service())
  } catch (err) {
    await stopAll(started)
    throw err
  }
  return started
}

async function stopAll(started: Started[]): Promise<void> {
  for (const { stop } of [...started].reverse()) await stop?.()
}

// Every tier's project runs this setup (in one process, maybe from separate module instances):
// the services start once, and the last teardown stops them.
interface Shared {
  users: number
  started: Promise<Started[]> | undefined
}
const KEY = Symbol.for('tributary.test.services')
const registry = globalThis as typeof globalThis & { [KEY]?: Shared }
const shared: Shared = (registry[KEY] ??= { users: 0, started: undefined })

function provideAll(project: TestProject, values: Partial<ProvidedContext>): void {
  for (const [key, value] of Object.entries(values) as [keyof ProvidedContext, string][]) {
    project.provide(key, value)
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  shared.users += 1
  const first = shared.started === undefined
  shared.started ??= startAll()
  let started: Started[]
  try {
    started = await shared.started
  } catch (err) {
    shared.users -= 1
    shared.started = undefined
    throw err
  }
  for (const { values } of started) provideAll(project, values)
  if (first) {
    const { kafkaBrokers, kafkaSource } = Object.assign(
      {},
      ...started.map((s) => s.values),
    ) as ProvidedContext
    if (kafkaBrokers) console.log(`[services] kafka ${kafkaBrokers} (${kafkaSource})`)
  }
  return async () => {
    shared.users -= 1
    if (shared.users > 0 || shared.started === undefined) return
    const all = shared.started
    shared.started = undefined
    await stopAll(await all)
  }
}
