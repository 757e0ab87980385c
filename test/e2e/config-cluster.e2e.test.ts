// Configuration push across processes, as a scaled-out deployment runs it: two tributary processes
// sharing Kafka, PostgreSQL and Redis; the document is written through process A's API while the
// device (mosquitto_sub) is connected to process B, which pushes the new configuration on the
// registry change; B restarted later still gives the latest configuration, written while it was down.
import { randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { startMqttTributary } from '../helpers/mqtt.ts'
import type { MqttTributary } from '../helpers/mqtt.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'
import { kafkaBrokers } from '../setup/kafka-env.ts'

const PASSWORD = 'correct horse battery'

let schema = ''
let env: Record<string, string> = {}
let a: MqttTributary
let b: MqttTributary | undefined

async function adminSql(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: inject('databaseUrl') })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

beforeAll(async () => {
  const prefix = uniqueName('e2e_cfgc').replaceAll('-', '_')
  schema = uniqueName('cfgc').replaceAll('-', '_')
  await adminSql(`CREATE SCHEMA ${schema}`)
  env = {
    TRIBUTARY_KAFKA_BROKERS: kafkaBrokers(),
    TRIBUTARY_TOPIC_PREFIX: prefix,
    TRIBUTARY_DATABASE_URL: `${inject('databaseUrl')}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    TRIBUTARY_REGISTRY_KEY: randomBytes(32).toString('base64'),
    TRIBUTARY_REDIS_URL: inject('redisUrl'),
  }
  // One after the other: the second finds the topics and the schema the first created.
  a = await startMqttTributary(env)
  b = await startMqttTributary(env)
})

afterAll(async () => {
  const codes = await Promise.all([a?.proc.stop('SIGTERM'), b?.proc.stop('SIGTERM')])
  if (schema !== '') await adminSql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  expect(codes).toEqual([0, 0])
})

/** mosquitto_sub -v on `config` at `port`: the configurations printed so far. */
function configSubscriber(port: number, tenant: string, device: string, count: number) {
  const child = spawn('stdbuf', [
    '-oL',
    'mosquitto_sub',
    ...['-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv311'],
    ...['-u', `${device}@${tenant}`, '-P', PASSWORD],
    ...['-q', '1', '-v', '-C', String(count), '-t', 'config'],
  ])
  let stdout = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const done = new Promise<number | null>((resolve) =>
    // 'close', not 'exit': output can still arrive after the exit.
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve(code)
    }),
  )
  const received = (): Array<{ configId: string; config: unknown }> =>
    stdout
      .split('\n')
      .filter((line) => line.startsWith('config {'))
      .map((line) => JSON.parse(line.slice('config '.length)) as { configId: string; config: unknown })
  const got = (n: number) =>
    waitUntil(() => received().length >= n, {
      timeoutMs: 30_000,
      message: () => `${n} configuration(s) on mosquitto_sub; it said ${stdout}`,
    })
  return { received, got, done }
}

describe('configuration push across processes (e2e: Kafka, PostgreSQL, Redis, mosquitto_sub)', () => {
  it("pushes a change made through A's API to the device on B, and B restarted gives the latest", async () => {
    const tenant = uniqueName('cc')
    await a.api.createTenant(tenant)
    await a.api.createDevice(tenant, 'pump')
    await a.api.setPassword(tenant, 'pump', PASSWORD)
    const put = (body: unknown) => a.api.request('PUT', `/tenants/${tenant}/devices/pump/config`, body)
    expect((await put({ speed: 1 })).status).toBe(200)

    const sub = configSubscriber(b!.ports.mqtt, tenant, 'pump', 2)
    await sub.got(1)
    expect(sub.received()[0]!.config).toEqual({ speed: 1 })
    expect((await put({ speed: 2 })).status).toBe(200)
    await sub.got(2)
    expect(await sub.done).toBe(0)
    expect(sub.received()[1]!.config).toEqual({ speed: 2 })

    expect(await b!.proc.stop('SIGTERM')).toBe(0)
    b = undefined
    expect((await put({ speed: 3 })).status).toBe(200)
    b = await startMqttTributary(env)
    const again = configSubscriber(b.ports.mqtt, tenant, 'pump', 1)
    await again.got(1)
    expect(await again.done).toBe(0)
    expect(again.received()[0]!.config).toEqual({ speed: 3 })
    const effective = await a.api.request('GET', `/tenants/${tenant}/devices/pump/config/effective`)
    expect(effective.body.configId).toBe(again.received()[0]!.configId)
  })
})
