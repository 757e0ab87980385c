// Resident memory per idle MQTT connection: Tributary's MQTT adapter against Debian's Mosquitto,
// each a fresh process per round, measured as (VmRSS with N idle authenticated connections − VmRSS
// before them) / N. Each device has its own token, so no connection takes another's session over.
import { randomBytes } from 'node:crypto'
import type { Contender, Scenario, ScenarioContext, ScenarioResult } from '../harness.ts'
import { BenchError, MiB, compareMetrics, formatNumber, sideBySide } from '../harness.ts'
import type { RemoteMemory } from '../inspector.ts'
import type { MqttConnection, MqttIdentity } from '../mqtt-load.ts'
import { closeConnections, openConnections } from '../mqtt-load.ts'
import { startMosquitto, startMqttTributary } from '../mqtt-servers.ts'
import { withServerBench } from '../server-bench.ts'
import type { ServerProcess } from '../server-process.ts'
import { openFileLimit, processStats } from '../server-process.ts'
import type { TributaryOptions } from '../tributary-process.ts'
import { registerDevices } from '../tributary-process.ts'

interface Params {
  readonly connections: number
  /** Connections opened and closed before the baseline (JIT, pools, caches). */
  readonly warmupConnections: number
  readonly rounds: number
}

const FULL: Params = { connections: 10_000, warmupConnections: 200, rounds: 2 }
const QUICK: Params = { connections: 1_000, warmupConnections: 100, rounds: 1 }

const TENANT = 'bench'
// Longer than a round: idle clients never have to ping.
const KEEPALIVE_SECONDS = 600
const CONNECT_CONCURRENCY = 100
const CONNECT_TIMEOUT_MS = 30_000
// Sockets the bench process needs besides the MQTT connections (Kafka, API, pipes).
const SPARE_FILES = 200
const SETTLE = { intervalMs: 500, stableSamples: 3, tolerance: 0.005, maxMs: 10_000 }

export interface IdleSample {
  readonly wanted: number
  /** Connections open when RSS was read (fewer than wanted only when one failed). */
  readonly open: number
  /** Why not every connection opened. */
  readonly failure: string | undefined
  readonly rssBeforeBytes: number
  readonly rssIdleBytes: number
  readonly bytesPerConnection: number
  readonly connectMs: number
  readonly serverCpuUsPerConnect: number
  /**
   * Tributary only (its inspector): the same two points after a full garbage collection, per open
   * connection, bytes; tells live data from garbage not yet collected.
   */
  readonly afterGc:
    | {
        readonly before: RemoteMemory
        readonly idle: RemoteMemory
        readonly rssPerConnection: number
        readonly heapUsedPerConnection: number
        readonly externalPerConnection: number
      }
    | undefined
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * VmRSS once it has stopped moving (allocation after the last CONNACK, lazily freed buffers):
 * `stableSamples` readings in a row within `tolerance` of each other, or the last one at `maxMs`.
 */
async function settledRss(pid: number): Promise<number> {
  const readings: number[] = []
  const start = performance.now()
  for (;;) {
    readings.push((await processStats(pid)).rssBytes)
    const recent = readings.slice(-SETTLE.stableSamples)
    const spread = (Math.max(...recent) - Math.min(...recent)) / Math.max(...recent)
    if (recent.length === SETTLE.stableSamples && spread <= SETTLE.tolerance) return recent.at(-1)!
    if (performance.now() - start > SETTLE.maxMs) return readings.at(-1)!
    await sleep(SETTLE.intervalMs)
  }
}

async function runOnce(
  start: () => Promise<ServerProcess>,
  identities: readonly MqttIdentity[],
  params: Params,
  protocolVersion: 4 | 5,
): Promise<IdleSample> {
  const server = await start()
  const endpoint = { host: '127.0.0.1', port: server.port }
  const options = { keepaliveSeconds: KEEPALIVE_SECONDS, timeoutMs: CONNECT_TIMEOUT_MS, protocolVersion }
  let connections: MqttConnection[] = []
  try {
    const warm = await openConnections(endpoint, identities.slice(-params.warmupConnections), {
      ...options,
      concurrency: CONNECT_CONCURRENCY,
    })
    await closeConnections(warm.connections)
    if (warm.failure !== undefined) {
      throw new BenchError(
        `${server.label}: warmup connection failed: ${warm.failure.reason}\n${server.tail()}`,
      )
    }
    // The forced collection comes before both VmRSS readings, never between them: the raw figure is
    // what the OS sees, garbage left by the connects included; the after-GC one is live data only.
    const gcBefore = await server.memoryAfterGc?.()
    const rssBefore = await settledRss(server.pid)
    const cpuBefore = (await processStats(server.pid)).cpuMs
    const opened = await openConnections(endpoint, identities.slice(0, params.connections), {
      ...options,
      concurrency: CONNECT_CONCURRENCY,
    })
    connections = opened.connections
    const cpuAfter = (await processStats(server.pid)).cpuMs
    const rssIdle = await settledRss(server.pid)
    const gcIdle = await server.memoryAfterGc?.()
    const open = connections.filter((c) => c.closedReason === undefined).length
    const failure = opened.failure?.reason
    const perConnection = (field: keyof RemoteMemory): number =>
      open === 0 ? Number.NaN : (gcIdle![field] - gcBefore![field]) / open
    return {
      wanted: params.connections,
      open,
      failure,
      rssBeforeBytes: rssBefore,
      rssIdleBytes: rssIdle,
      bytesPerConnection: open === 0 ? Number.NaN : (rssIdle - rssBefore) / open,
      connectMs: opened.ms,
      serverCpuUsPerConnect: ((cpuAfter - cpuBefore) * 1000) / Math.max(1, connections.length),
      afterGc:
        gcBefore === undefined || gcIdle === undefined
          ? undefined
          : {
              before: gcBefore,
              idle: gcIdle,
              rssPerConnection: perConnection('rss'),
              heapUsedPerConnection: perConnection('heapUsed'),
              externalPerConnection: perConnection('external'),
            },
    }
  } finally {
    await closeConnections(connections)
    await server.stop()
  }
}

function describe(s: IdleSample): string {
  return (
    `${s.open}/${s.wanted} open, RSS ${formatNumber(s.rssBeforeBytes / MiB)} → ${formatNumber(s.rssIdleBytes / MiB)} MiB, ` +
    `${formatNumber(s.bytesPerConnection / 1024)} KiB per connection, connect ${formatNumber(s.connectMs)} ms` +
    (s.failure === undefined ? '' : `; stopped: ${s.failure}`)
  )
}

async function run(context: ScenarioContext, protocolVersion: 4 | 5): Promise<ScenarioResult> {
  const base = context.quick ? QUICK : FULL
  const wanted = context.records ?? base.connections
  // This process holds the client end of every connection: its own open-file limit bounds N.
  const limit = await openFileLimit()
  const connections = Math.min(wanted, limit - SPARE_FILES)
  if (connections < wanted) {
    context.progress(
      `open-file limit ${limit} of the bench process: ${connections} connections instead of ${wanted}`,
    )
  }
  const params: Params = { ...base, connections, rounds: context.rounds ?? base.rounds }
  return withServerBench(context, 'mqtt-idle', async (bench) => {
    const tributaryOptions = {
      ...bench.tributaryOptions,
      // One for every process of the run (the registrar and each round's).
      adminToken: randomBytes(24).toString('base64url'),
      env: {
        TRIBUTARY_MQTT_MAX_CONNECTIONS_PER_TENANT: String(connections + params.warmupConnections + 1_000),
      },
    }
    const identities = await registerOnce(context, tributaryOptions, connections)
    const contender = (label: string, start: () => Promise<ServerProcess>): Contender<IdleSample> => ({
      label,
      run: () => runOnce(start, identities, params, protocolVersion),
    })
    const result = await sideBySide({
      candidate: contender('tributary', () => startMqttTributary({ ...tributaryOptions, inspect: true })),
      baseline: contender('mosquitto', startMosquitto),
      rounds: params.rounds,
      warmupRounds: 0,
      onRun: (label, round, sample) =>
        context.progress(`round ${round + 1}/${params.rounds} ${label}: ${describe(sample)}`),
    })
    const { ratios, rows } = compareMetrics(result, {
      bytesPerConnection: {
        label: 'KiB per idle connection ((idle − before) / N)',
        of: (s) => s.bytesPerConnection,
        scale: 1024,
      },
      gcRssPerConnection: {
        label: '  after a full GC: KiB RSS per connection',
        of: (s) => s.afterGc?.rssPerConnection ?? Number.NaN,
        scale: 1024,
      },
      gcHeapPerConnection: {
        label: '  after a full GC: KiB V8 heap used per connection',
        of: (s) => s.afterGc?.heapUsedPerConnection ?? Number.NaN,
        scale: 1024,
      },
      gcExternalPerConnection: {
        label: '  after a full GC: KiB external (Buffers, WASM) per conn.',
        of: (s) => s.afterGc?.externalPerConnection ?? Number.NaN,
        scale: 1024,
      },
      rssBeforeBytes: {
        label: 'VmRSS before MiB (after warmup connections)',
        of: (s) => s.rssBeforeBytes,
        scale: MiB,
      },
      rssIdleBytes: {
        label: `VmRSS with ${formatNumber(connections)} idle connections MiB`,
        of: (s) => s.rssIdleBytes,
        scale: MiB,
      },
      connectMs: {
        label: `connect ms (${formatNumber(connections)}, ${CONNECT_CONCURRENCY} at once)`,
        of: (s) => s.connectMs,
      },
      serverCpuUsPerConnect: { label: 'server CPU µs per connect', of: (s) => s.serverCpuUsPerConnect },
    })
    const samples = [...result.candidate.samples, ...result.baseline.samples]
    const short = samples.filter((s) => s.open < s.wanted)
    return {
      table: {
        title:
          `${protocolVersion === 5 ? 'mqtt5-idle-memory: MQTT 5' : 'mqtt-idle-memory: MQTT 3.1.1'}, RSS per idle connection at ${formatNumber(connections)} authenticated connections, ` +
          `median of ${params.rounds} interleaved round${params.rounds === 1 ? '' : 's'} (a fresh server process each)`,
        columns: ['metric', 'tributary', 'mosquitto', 'ratio t/m', 'per-round ratios'],
        rows,
        notes: [
          `tributary: device tokens as passwords, one device per connection; ${protocolVersion === 5 ? 'MQTT 5 (the mqtt-packet endpoint)' : 'MQTT 3.1.1 (aedes)'}, clean session, keepalive ${KEEPALIVE_SECONDS} s.`,
          'after a full GC: the tributary process is started with --inspect on loopback, and the bench runs ' +
            'HeapProfiler.collectGarbage in it at both points (Mosquitto has no garbage collector: n/a).',
          ...(connections < wanted
            ? [
                `${formatNumber(wanted)} wanted: the bench process may open ${limit} files (ulimit -n), so ${connections}.`,
              ]
            : []),
          ...short.map(
            (s) =>
              `a run reached ${s.open} of ${s.wanted} connections: ${s.failure ?? 'closed by the server'}`,
          ),
        ],
      },
      data: { params, wanted, openFileLimit: limit, order: result.order, ratios, samples: result },
    }
  })
}

/**
 * Registers the devices once, through a first process; each round's fresh process reads them from
 * the same data dir.
 */
async function registerOnce(
  context: ScenarioContext,
  options: Omit<TributaryOptions, 'listener'>,
  connections: number,
): Promise<MqttIdentity[]> {
  const registrar = await startMqttTributary(options)
  try {
    context.progress(`registering ${connections} devices with a device token each (pid ${registrar.pid})`)
    const started = performance.now()
    const identities = await registerDevices(registrar.api, TENANT, {
      count: connections,
      prefix: 'idle-',
      secret: 'token',
      concurrency: 16,
    })
    context.progress(`registered in ${formatNumber((performance.now() - started) / 1000)} s`)
    return identities
  } finally {
    await registrar.stop()
  }
}

export const mqttIdleMemory: Scenario = {
  name: 'mqtt-idle-memory',
  description:
    'RSS per idle MQTT 3.1.1 connection at 10k connections: Tributary adapter (aedes) vs Mosquitto',
  needsKafka: true,
  run: (context) => run(context, 4),
}

export const mqtt5IdleMemory: Scenario = {
  name: 'mqtt5-idle-memory',
  description:
    'RSS per idle MQTT 5 connection at 10k connections: Tributary adapter (mqtt-packet endpoint) vs Mosquitto',
  needsKafka: true,
  run: (context) => run(context, 5),
}
