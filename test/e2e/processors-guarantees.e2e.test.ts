// The processors' guarantees as an operator sees them, on Kafka and one PostgreSQL registry: an
// `--roles api` process registers the devices, kcat produces CloudEvents straight to the
// 4-partition ingress topic, and `--roles processors` processes are killed with SIGKILL under load
// and started again. kcat then counts every input id on the tenant topic (duplicates allowed, none
// lost), and the processes' /metrics show two of them sharing the partitions and one taking over.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { IngressEvent } from '../helpers/ingress.ts'
import { idCounts, produceWithKcat, telemetryEvents } from '../helpers/ingress.ts'
import type { Api } from '../helpers/mqtt.ts'
import { ADMIN_TOKEN, createApi, isTelemetry } from '../helpers/mqtt.ts'
import type { TributaryProcess } from '../helpers/process.ts'
import { startProcess } from '../helpers/process.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'
import { kafkaBrokers } from '../setup/kafka-env.ts'

const PARTITIONS = 4

interface Running {
  readonly proc: TributaryProcess
  readonly management: number
}

let brokers = ''
let prefix = ''
let schema = ''
let env: Record<string, string> = {}
let api: Api
const running: TributaryProcess[] = []

async function adminSql(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: inject('databaseUrl') })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

async function start(role: 'api' | 'processors'): Promise<Running & { api: number }> {
  const proc = startProcess(['start', '--roles', role], env)
  running.push(proc)
  const started = await proc.waitForLog((l) => l.msg === 'tributary started')
  const ports = started['ports'] as { management: number; api?: number }
  return { proc, management: ports.management, api: ports.api ?? 0 }
}

/** The sum of a metric's series whose labels include `labels` (0 before the first sample). */
async function metricSum(on: Running, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${on.management}/metrics`)).text()
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  let sum = 0
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match?.[1] !== name) continue
    const present = (match[2] ?? '').split(/,(?=[a-zA-Z_]+=")/)
    if (wanted.every((pair) => present.includes(pair))) sum += Number(match[3])
  }
  return sum
}

const accepted = (on: Running) => metricSum(on, 'tributary_processor_events_total', { outcome: 'accepted' })
const owned = (on: Running) => metricSum(on, 'tributary_processor_partitions')

/** Waits until every event's id is on the tenant topic; returns how often each id arrived. */
async function arrived(tenant: string, events: readonly IngressEvent[]): Promise<Map<string, number>> {
  let counts = new Map<string, number>()
  await waitUntil(
    async () => {
      // The tenant topic appears with the first event a processor takes up.
      counts = await idCounts(brokers, `${prefix}.events.${tenant}`, isTelemetry).catch(() => counts)
      return events.every((e) => counts.has(e.id))
    },
    { timeoutMs: 90_000, intervalMs: 1_000 },
  ).catch(() => undefined) // the precise assertion below says what is missing
  const missing = events.filter((e) => !counts.has(e.id)).map((e) => `${e.device}#${e.seq}`)
  expect(missing).toEqual([])
  return counts
}

async function registerDevices(count: number): Promise<{ tenant: string; devices: string[] }> {
  const tenant = uniqueName('pg')
  await api.createTenant(tenant)
  const devices = Array.from({ length: count }, (_, i) => `meter-${i}`)
  for (const device of devices) await api.createDevice(tenant, device)
  return { tenant, devices }
}

beforeAll(async () => {
  brokers = kafkaBrokers()
  prefix = uniqueName('e2e_guar').replaceAll('-', '_')
  schema = uniqueName('guar').replaceAll('-', '_')
  await adminSql(`CREATE SCHEMA ${schema}`)
  env = {
    TRIBUTARY_KAFKA_BROKERS: brokers,
    TRIBUTARY_TOPIC_PREFIX: prefix,
    // Before the first process creates the topics: ingress and tenant topics get 4 partitions.
    TRIBUTARY_TOPIC_PARTITIONS: String(PARTITIONS),
    TRIBUTARY_DATABASE_URL: `${inject('databaseUrl')}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    TRIBUTARY_REGISTRY_KEY: randomBytes(32).toString('base64'),
    TRIBUTARY_ADMIN_TOKEN: ADMIN_TOKEN,
    // A killed process's partitions are taken over once its session lapses: the broker's minimum.
    TRIBUTARY_KAFKA_SESSION_TIMEOUT_MS: '6000',
  }
  const registry = await start('api')
  api = createApi(`http://127.0.0.1:${registry.api}`)
})

afterAll(async () => {
  const codes = await Promise.all(running.map((p) => p.stop('SIGTERM')))
  if (schema !== '') await adminSql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  // Every process that was not killed stopped cleanly.
  expect(codes.filter((c) => c !== 0 && c !== 'SIGKILL')).toEqual([])
})

describe('processor guarantees (e2e: kcat → Kafka → tributary --roles processors → kcat)', () => {
  it('loses nothing when a processor is killed with SIGKILL mid-batch and another starts', async () => {
    const { tenant, devices } = await registerDevices(20)
    const events = telemetryEvents(tenant, devices, 1_000)
    // A backlog of 20,000 events before any processor runs: the first one is busy when killed.
    await produceWithKcat(brokers, `${prefix}.ingress`, events)

    const first = await start('processors')
    await waitUntil(async () => (await accepted(first)) >= 2_000, { timeoutMs: 60_000, intervalMs: 10 })
    expect(await first.proc.stop('SIGKILL')).toBe('SIGKILL')
    const beforeRestart = await idCounts(brokers, `${prefix}.events.${tenant}`, isTelemetry)
    // Killed part way: some output is durable, not all of it.
    expect(beforeRestart.size).toBeGreaterThan(0)
    expect(beforeRestart.size).toBeLessThan(events.length)

    const second = await start('processors')
    const counts = await arrived(tenant, events)
    const sent = new Set(events.map((e) => e.id))
    expect([...counts.keys()].filter((id) => !sent.has(id))).toEqual([])
    const duplicates = [...counts.values()].reduce((sum, n) => sum + n - 1, 0)
    console.info(
      `SIGKILL after ${beforeRestart.size} of ${events.length} events were out: ` +
        `${counts.size} distinct ids on the tenant topic, ${duplicates} duplicates`,
    )
    // Nothing was refused on the way.
    const dead = await idCounts(
      brokers,
      `${prefix}.deadletter`,
      (r) => r.key?.startsWith(`${tenant}/`) === true,
    )
    expect(dead.size).toBe(0)
    expect(await second.proc.stop('SIGTERM')).toBe(0)
  }, 240_000)

  it('shares the partitions between two processors, and the survivor takes over after a SIGKILL', async () => {
    const { tenant, devices } = await registerDevices(40)
    const a = await start('processors')
    const b = await start('processors')
    await waitUntil(
      async () => {
        const [onA, onB] = await Promise.all([owned(a), owned(b)])
        return onA > 0 && onB > 0 && onA + onB === PARTITIONS
      },
      // A member killed earlier in this suite holds a rebalance up to its session timeout (6 s).
      { timeoutMs: 90_000, intervalMs: 250, message: () => 'both processors to own ingress partitions' },
    )

    const shared = telemetryEvents(tenant, devices, 100)
    await produceWithKcat(brokers, `${prefix}.ingress`, shared)
    const once = await arrived(tenant, shared)
    // No process failed and no member came or went meanwhile: every event exactly once.
    expect([...once.values()].filter((n) => n !== 1)).toEqual([])
    // Keys of 40 devices spread over all 4 partitions: each process had some of the work.
    expect(await accepted(a)).toBeGreaterThan(0)
    expect(await accepted(b)).toBeGreaterThan(0)

    const acceptedBefore = await accepted(a)
    expect(await b.proc.stop('SIGKILL')).toBe('SIGKILL')
    // Produced while B's partitions have no live owner: they wait for A to take them over.
    const later = telemetryEvents(tenant, devices, 100, 100)
    await produceWithKcat(brokers, `${prefix}.ingress`, later)
    // B's session times out (6 s), then A rejoins; a rebalance under way may take up to 12 s more.
    await waitUntil(async () => (await owned(a)) === PARTITIONS, {
      timeoutMs: 150_000,
      intervalMs: 250,
      message: () => `A to own all ${PARTITIONS} partitions after B was killed`,
    })
    const counts = await arrived(tenant, later)
    expect(counts.size).toBe(shared.length + later.length)
    expect((await accepted(a)) - acceptedBefore).toBeGreaterThanOrEqual(later.length)
    expect(await a.proc.stop('SIGTERM')).toBe(0)
  }, 360_000)
})
