// A broker crash under QoS 1 load loses no acknowledged message: MQTT.js keeps a window of QoS 1
// publishes in flight to a tributary on the Kafka bus, the process is killed (SIGKILL) midway and
// restarted on the same port and data dir, MQTT.js reconnects and resends what was not
// acknowledged, and kcat finds every id whose PUBACK the client received (duplicates allowed).
// Then a graceful stop ends the session with a disconnected event (reason shutdown).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import type { MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import {
  connectionData,
  isConnection,
  isTelemetry,
  readTopic,
  startMqttTributary,
  waitForRecords,
  within,
} from '../helpers/mqtt.ts'
import type { MqttTributary } from '../helpers/mqtt.ts'
import { deferred, uniqueName, waitUntil } from '../helpers/wait.ts'
import { kafkaBrokers } from '../setup/kafka-env.ts'

const MESSAGES = 2_000
const WINDOW = 100
const PASSWORD = 'correct horse battery'

const running: MqttTributary[] = []
const dirs: string[] = []
let client: MqttClient | undefined
afterEach(async () => {
  await client?.endAsync(true)
  await Promise.all(running.splice(0).map((t) => t.proc.stop('SIGKILL')))
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

describe('MQTT adapter restart under QoS 1 load (e2e: MQTT.js, kcat)', () => {
  it('loses no acknowledged message when the process is killed midway and restarted, then stops gracefully', async () => {
    const brokers = kafkaBrokers()
    const prefix = uniqueName('e2e_mqttr').replaceAll('-', '_')
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-e2e-restart-'))
    dirs.push(dataDir)
    const env = {
      TRIBUTARY_KAFKA_BROKERS: brokers,
      TRIBUTARY_TOPIC_PREFIX: prefix,
      TRIBUTARY_DATA_DIR: dataDir,
      // The load is the point here, not the per-device rate limit.
      TRIBUTARY_MQTT_PUBLISH_RATE: '1000000',
    }
    const first = await startMqttTributary(env)
    running.push(first)
    const tenant = uniqueName('mqr')
    await first.api.createTenant(tenant)
    await first.api.createDevice(tenant, 'loader')
    await first.api.setPassword(tenant, 'loader', PASSWORD)

    const run = uniqueName('run')
    const acked = new Set<number>()
    const failed: unknown[] = []
    let next = 0
    let inFlight = 0
    let reconnects = 0
    const halfway = deferred()
    const finished = deferred()
    client = mqtt.connect(`mqtt://127.0.0.1:${first.ports.mqtt}`, {
      username: `loader@${tenant}`,
      password: PASSWORD,
      protocolVersion: 4,
      reconnectPeriod: 100,
      connectTimeout: 5_000,
    })
    client.on('reconnect', () => (reconnects += 1))
    client.on('error', () => {}) // refused reconnects while the process is down are expected
    const load = client

    // A window of QoS 1 publishes: each PUBACK (the publish callback) lets the next one go.
    const pump = (): void => {
      while (inFlight < WINDOW && next < MESSAGES) {
        const n = next++
        inFlight += 1
        load.publish('load/qos1', JSON.stringify({ run, n }), { qos: 1 }, (err) => {
          inFlight -= 1
          if (err) failed.push(err)
          else acked.add(n)
          if (acked.size >= MESSAGES / 2) halfway.resolve()
          if (acked.size + failed.length === MESSAGES) finished.resolve()
          pump()
        })
      }
    }
    load.once('connect', pump)

    await within(halfway.promise, 60_000, `${MESSAGES / 2} PUBACKs before the kill`)
    const inFlightAtKill = inFlight
    await first.proc.stop('SIGKILL')
    const ackedBeforeKill = acked.size
    // Killed under load: PUBLISHes were on the wire without their PUBACK.
    expect(inFlightAtKill).toBeGreaterThan(0)
    expect(ackedBeforeKill).toBeLessThan(MESSAGES)

    // Same port (the client reconnects to it) and same data dir (the registry knows the device).
    const second = await startMqttTributary({ ...env, TRIBUTARY_MQTT_PORT: String(first.ports.mqtt) })
    running.push(second)
    expect(second.ports.mqtt).toBe(first.ports.mqtt)
    await within(finished.promise, 60_000, `all ${MESSAGES} PUBACKs after the restart`)
    expect(failed).toEqual([])
    expect(acked.size).toBe(MESSAGES)
    expect(reconnects).toBeGreaterThan(0)

    // Every acknowledged id is on Kafka, as a data engineer counts them.
    const seen = new Map<number, number>()
    const countSeen = async (): Promise<void> => {
      seen.clear()
      for (const record of await readTopic(brokers, `${prefix}.ingress`)) {
        if (!isTelemetry(record) || record.key !== `${tenant}/loader`) continue
        const { n } = JSON.parse(record.payload ?? '{}') as { n?: number }
        if (typeof n === 'number') seen.set(n, (seen.get(n) ?? 0) + 1)
      }
    }
    await waitUntil(
      async () => {
        await countSeen()
        return [...acked].every((n) => seen.has(n))
      },
      { timeoutMs: 15_000, intervalMs: 500 },
    ).catch(() => undefined) // the precise assertion below says what is missing
    const missing = [...acked].filter((n) => !seen.has(n)).sort((x, y) => x - y)
    expect(missing).toEqual([])
    expect(seen.size).toBe(MESSAGES)

    // A graceful stop, by contrast, ends the live session with reason shutdown and exits 0; the
    // killed process wrote no disconnected event at all.
    const closed = new Promise<void>((resolve) => load.once('close', () => resolve()))
    expect(await second.proc.stop('SIGTERM')).toBe(0)
    await within(closed, 5_000, 'session closed by the shutdown')
    const disconnects = await waitForRecords(
      brokers,
      `${prefix}.ingress`,
      (r) => r.key === `${tenant}/loader` && isConnection(r) && connectionData(r).status === 'disconnected',
    )
    expect(disconnects.map((r) => connectionData(r).reason)).toEqual(['shutdown'])
  })
})
