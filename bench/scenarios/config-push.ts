// Configuration push: the time from the start of a `PUT .../config` (a new tenant-level document)
// until each of N MQTT devices subscribed to `config` has the new configuration id, p50/p99/max
// over the devices, side by side with the command round trip (API → MQTT device → API) through the
// same process in the same run. Every device must get the new id, else the run fails.
import { generate } from 'mqtt-packet'
import { configId } from '../../core/registry/device-config.ts'
import type { ConfigObject } from '../../core/registry/device-config.ts'
import { TENANT, startCommandProduct } from '../command-process.ts'
import type { CommandProduct } from '../command-process.ts'
import type { Scenario, ScenarioContext, ScenarioResult } from '../harness.ts'
import {
  BenchError,
  compareMetrics,
  formatNumber,
  reportRuns,
  requireKafka,
  scenarioParams,
  sideBySide,
  summarize,
} from '../harness.ts'
import type { MqttConnection } from '../mqtt-load.ts'
import { closeConnections, openConnections } from '../mqtt-load.ts'
import { processStats } from '../server-process.ts'
import { registerDevices } from '../tributary-process.ts'
import type { LatencySample } from '../webhook-runs.ts'
import { describeLatency } from '../webhook-runs.ts'

interface Params {
  readonly devices: number
  readonly rounds: number
  /** Command round trips per second of the baseline, for `commandSeconds`. */
  readonly commandRate: number
  readonly commandSeconds: number
}

const FULL: Params = { devices: 1_000, rounds: 3, commandRate: 50, commandSeconds: 10 }
const QUICK: Params = { devices: 20, rounds: 1, commandRate: 50, commandSeconds: 2 }
const WARMUP_COMMAND_SECONDS = 1

const PREFIX = 'cfg-'
// Longer than a run: idle devices never have to ping.
const KEEPALIVE_SECONDS = 600
const CONNECT_CONCURRENCY = 50
const CONNECT_TIMEOUT_MS = 30_000
/** Bound on every device having a configuration: the first on subscribe, a new one after a PUT. */
const DELIVERY_TIMEOUT_MS = 60_000
const MISSING_SHOWN = 5
/**
 * After a push the process still works (config.changed fan-out, delivered events): the command
 * round trip runs once its CPU use over a window is below the bound, or after the longest wait.
 */
const QUIET = { windowMs: 500, cpuShare: 0.15, maxMs: 20_000 }

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits until process `pid` is quiet (QUIET); the ms waited. */
async function quiet(pid: number): Promise<number> {
  const start = performance.now()
  while (performance.now() - start < QUIET.maxMs) {
    const before = (await processStats(pid)).cpuMs
    await sleep(QUIET.windowMs)
    if ((await processStats(pid)).cpuMs - before <= QUIET.windowMs * QUIET.cpuShare) break
  }
  return performance.now() - start
}

interface Fleet {
  readonly connections: MqttConnection[]
  /** The configuration id each device got last, by index. */
  readonly latest: Array<string | undefined>
  /** Resolves when every device has `id`, with each one's ms from `since`; rejects after the timeout. */
  waitFor(id: string, since: number, what: string): Promise<Float64Array>
}

/**
 * Subscribes every connection to `config` at QoS 1 (acknowledging each PUBLISH) and keeps the id
 * each device was sent last. A refused subscription, a closed connection or a PUBLISH that is not
 * `{configId, config}` fails the waits.
 */
function observe(connections: MqttConnection[], tail: () => string): Fleet {
  const latest = new Array<string | undefined>(connections.length).fill(undefined)
  let failure: BenchError | undefined
  /** Throws the failure seen so far (a closed connection, a refused SUBACK, a bad payload). */
  const check = (): void => {
    if (failure !== undefined) throw failure
  }
  let waiter: { id: string; since: number; at: Float64Array; left: number; done: () => void } | undefined
  const fail = (reason: string): void => {
    failure ??= new BenchError(`${reason}\n${tail()}`)
    waiter?.done()
  }
  connections.forEach((connection, index) => {
    const device = connection.identity.clientId
    connection.onClose = (reason) => fail(`${device} closed: ${reason}`)
    connection.onPacket = (packet) => {
      if (packet.cmd === 'suback') {
        if (packet.granted[0] !== 1)
          fail(`${device}: SUBACK for config granted ${JSON.stringify(packet.granted)}`)
        return
      }
      if (packet.cmd === 'pingresp') return
      if (packet.cmd !== 'publish' || packet.topic !== 'config')
        return fail(`${device}: unexpected ${packet.cmd} ${packet.cmd === 'publish' ? packet.topic : ''}`)
      const now = performance.now()
      if (packet.qos === 1) connection.socket.write(generate({ cmd: 'puback', messageId: packet.messageId! }))
      let id: unknown
      try {
        id = (JSON.parse(packet.payload.toString()) as { configId?: unknown }).configId
      } catch {
        id = undefined
      }
      if (typeof id !== 'string')
        return fail(`${device}: config payload without configId: ${packet.payload.toString().slice(0, 200)}`)
      latest[index] = id
      const w = waiter
      if (w !== undefined && id === w.id && Number.isNaN(w.at[index])) {
        w.at[index] = now - w.since
        if (--w.left === 0) w.done()
      }
    }
    connection.socket.write(
      generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'config', qos: 1 }] }),
    )
  })
  return {
    connections,
    latest,
    async waitFor(id, since, what) {
      check()
      const at = new Float64Array(connections.length).fill(Number.NaN)
      // Devices that had the id before the wait began (the first configuration, sent on subscribe).
      latest.forEach((has, i) => {
        if (has === id) at[i] = 0
      })
      const left = at.filter(Number.isNaN).length
      if (left === 0) return at
      const done = Promise.withResolvers<void>()
      waiter = { id, since, at, left, done: done.resolve }
      const timer = setTimeout(done.resolve, DELIVERY_TIMEOUT_MS)
      try {
        await done.promise
      } finally {
        clearTimeout(timer)
        waiter = undefined
      }
      check()
      const missing = connections.filter((_, i) => Number.isNaN(at[i]))
      if (missing.length > 0) {
        const shown = missing.slice(0, MISSING_SHOWN).map((c) => {
          const has = latest[connections.indexOf(c)]
          return `${c.identity.clientId} (has ${has ?? 'nothing'})`
        })
        throw new BenchError(
          `${what}: ${missing.length} of ${connections.length} devices did not get configuration ${id} ` +
            `within ${DELIVERY_TIMEOUT_MS / 1000} s: ${shown.join(', ')}${missing.length > MISSING_SHOWN ? ', …' : ''}\n${tail()}`,
        )
      }
      return at
    },
  }
}

/** One round: PUT a new tenant-level document, then the ms from the PUT's start to each device having it. */
async function pushOnce(product: CommandProduct, fleet: Fleet, round: number) {
  const document: ConfigObject = { bench: { round, nonce: `${process.pid}-${Date.now()}` }, led: 'on' }
  const id = configId(document)
  const since = performance.now()
  const arrived = fleet.waitFor(id, since, `round ${round}`)
  // A refusal throws (the API client's ApiError, with the problem's title and detail).
  await product.server.api.request('PUT', `/tenants/${TENANT}/config`, { body: document })
  const putMs = performance.now() - since
  const at = await arrived
  return { putMs, sample: { events: at.length, inputPerSec: Number.NaN, stats: summarize(Array.from(at)) } }
}

async function run(context: ScenarioContext): Promise<ScenarioResult> {
  const brokers = requireKafka(context)
  const params = scenarioParams(context, { full: FULL, quick: QUICK }, 'devices')
  context.progress('starting tributary --roles all')
  const product = await startCommandProduct(brokers, (m) => context.progress(m), {
    TRIBUTARY_MQTT_MAX_CONNECTIONS_PER_TENANT: String(params.devices + 100),
  })
  let connections: MqttConnection[] = []
  try {
    const { server } = product
    context.progress(`registering ${params.devices} devices with a device token each`)
    const identities = await registerDevices(server.api, TENANT, {
      count: params.devices,
      prefix: PREFIX,
      secret: 'token',
      concurrency: 16,
    })
    const opened = await openConnections({ host: '127.0.0.1', port: server.port }, identities, {
      keepaliveSeconds: KEEPALIVE_SECONDS,
      timeoutMs: CONNECT_TIMEOUT_MS,
      concurrency: CONNECT_CONCURRENCY,
    })
    connections = opened.connections
    if (opened.failure !== undefined)
      throw new BenchError(
        `only ${opened.failure.opened} of ${params.devices} devices connected: ${opened.failure.reason}\n${server.tail()}`,
      )
    context.progress(`${connections.length} devices connected in ${formatNumber(opened.ms)} ms; subscribing`)
    const fleet = observe(connections, () => server.tail())
    // The first configuration comes on subscribe: every device has it before the first PUT.
    const current = await server.api.request<{ configId: string }>(
      'GET',
      `/tenants/${TENANT}/devices/${PREFIX}0/config/effective`,
    )
    await fleet.waitFor(current.body.configId, performance.now(), 'subscribe')
    const putMs: number[] = []
    const quietMs: number[] = []
    const commandSeconds = (round: number) => (round < 0 ? WARMUP_COMMAND_SECONDS : params.commandSeconds)
    const result = await sideBySide<LatencySample>({
      candidate: {
        label: `PUT → ${params.devices} devices`,
        run: async (round) => {
          const pushed = await pushOnce(product, fleet, round)
          if (round >= 0) putMs.push(pushed.putMs)
          return pushed.sample
        },
      },
      baseline: {
        label: 'command round trip',
        run: async (round) => {
          const waited = await quiet(server.pid)
          if (round >= 0) quietMs.push(waited)
          return product.roundTrips(params.commandRate, commandSeconds(round))
        },
      },
      rounds: params.rounds,
      onRun: reportRuns(context, params.rounds, (s) =>
        Number.isNaN(s.inputPerSec)
          ? `p50 ${formatNumber(s.stats.p50)} ms, p99 ${formatNumber(s.stats.p99)} ms, max ${formatNumber(s.stats.max)} ms`
          : describeLatency(s),
      ),
    })
    const { rows, ratios } = compareMetrics(result, {
      p50: { label: 'p50 (ms)', of: (s) => s.stats.p50 },
      p99: { label: 'p99 (ms)', of: (s) => s.stats.p99 },
      max: { label: 'max (ms)', of: (s) => s.stats.max },
    })
    const puts = summarize(putMs)
    return {
      table: {
        title:
          `config-push: PUT of a tenant configuration → ${formatNumber(params.devices)} MQTT devices vs the ` +
          `command round trip, same tributary process, median of ${params.rounds} interleaved rounds`,
        columns: ['metric', 'config push', 'command round trip', 'ratio p/c', 'per-round ratios'],
        rows,
        notes: [
          `config push: per device, ms from the start of PUT /tenants/${TENANT}/config until its new configId ` +
            `arrived on config (QoS 1); ${formatNumber(params.devices)} devices on raw MQTT 3.1.1 connections, ` +
            `one device token each. The PUT itself answered in ${formatNumber(puts.median)} ms (median).`,
          `command round trip: POST .../commands/echo?wait=10 → MQTT device → response, ` +
            `${formatNumber(params.commandRate)}/s for ${params.commandSeconds} s (the commands scenario's path).`,
          `each command run starts once the process is quiet after the push (at most ${QUIET.cpuShare * 100} % of a CPU ` +
            `over ${QUIET.windowMs} ms): waited ${quietMs.map((ms) => formatNumber(ms / 1000)).join(', ')} s.`,
          'tributary start --roles all on Kafka; the device connections and the API client run in the bench process.',
        ],
      },
      data: { params, ratios, putMs, quietMs, samples: result },
    }
  } finally {
    await closeConnections(connections)
    await product.close()
  }
}

export const configPush: Scenario = {
  name: 'config-push',
  description:
    'PUT of a tenant configuration → every one of 1,000 MQTT devices has it, p50/p99, vs the command round trip',
  needsKafka: true,
  run,
}
