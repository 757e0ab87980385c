// The two MQTT servers of the MQTT scenarios as child processes: a `tributary start` process (its
// MQTT adapter producing to Kafka) and Debian's Mosquitto on a generated config; and the devices
// registered through Tributary's management API, and the bench's own Kafka client.
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createKafkaBus } from '../core/bus/kafka.ts'
import { topicNames } from '../core/events/topics.ts'
import { createApiClient } from '../main/cli/api-client.ts'
import type { ApiClient } from '../main/cli/api-client.ts'
import { BenchError, runConcurrently } from './harness.ts'
import type { Inspector, RemoteMemory } from './inspector.ts'
import { INSPECTOR_LINE, connectInspector } from './inspector.ts'
import type { MqttIdentity } from './mqtt-load.ts'
import { freePort, spawnWithLimit } from './server-process.ts'

// The HTTP and CoAP scenarios take these from here; they live in server-process.ts.
export { machineCpu, processStats } from './server-process.ts'
export type { ProcessStats } from './server-process.ts'

export const MOSQUITTO = '/usr/sbin/mosquitto'
const CLI = fileURLToPath(new URL('../main/cli.ts', import.meta.url))

export interface ServerProcess {
  readonly label: string
  readonly pid: number
  readonly mqttPort: number
  /** The last lines the process wrote, for error messages. */
  tail(): string
  /** A Node server started with its inspector: memory after a full garbage collection. */
  readonly memoryAfterGc?: (() => Promise<RemoteMemory>) | undefined
  stop(): Promise<void>
}

/** Debian's Mosquitto on a free loopback port: anonymous, no persistence, no log line per connection. */
export async function startMosquitto(): Promise<ServerProcess> {
  if (!existsSync(MOSQUITTO)) throw new BenchError(`${MOSQUITTO} not found (apt-get install mosquitto)`)
  const dir = await mkdtemp(join(tmpdir(), 'tributary-bench-mosquitto-'))
  const port = await freePort()
  const config = join(dir, 'mosquitto.conf')
  await writeFile(
    config,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      // The adapter sets TCP_NODELAY on its sockets; Mosquitto's default (Nagle on) holds PUBACKs
      // back behind the client's delayed ACKs (~40 ms), which would be measured instead of the broker.
      'set_tcp_nodelay true',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      // A notice per connection would be 10,000 lines in the idle scenario; Tributary logs none either.
      'connection_messages false',
      '',
    ].join('\n'),
  )
  const proc = spawnWithLimit('mosquitto', [MOSQUITTO, '-c', config], { PATH: process.env.PATH ?? '' })
  try {
    await proc.waitForLine((l) => / running$/.test(l), 'its "running" line')
  } catch (err) {
    await proc.stop()
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  return {
    label: 'mosquitto',
    pid: proc.child.pid!,
    mqttPort: port,
    tail: () => proc.lines.slice(-15).join('\n'),
    async stop() {
      await proc.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

export interface TributaryOptions {
  readonly brokers: readonly string[]
  /** Registry and data directory; kept by stop() so a later process finds the same devices. */
  readonly dataDir: string
  readonly topicPrefix: string
  readonly adminToken: string
  /** More TRIBUTARY_* variables (limits raised for the load). */
  readonly env?: Readonly<Record<string, string>> | undefined
  /** Start with the inspector on loopback, to collect garbage and read memory from outside. */
  readonly inspect?: boolean | undefined
}

export interface TributaryProcess extends ServerProcess {
  readonly api: ApiClient
  readonly inspector: Inspector | undefined
}

/** `tributary start --roles adapters,api` on Kafka, every listener on a free loopback port. */
export async function startTributary(options: TributaryOptions): Promise<TributaryProcess> {
  const node = [process.execPath, ...(options.inspect === true ? ['--inspect=127.0.0.1:0'] : []), CLI]
  const proc = spawnWithLimit('tributary', [...node, 'start', '--roles', 'adapters,api'], {
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
    TRIBUTARY_COAP_PORT: '0',
    // The other device adapters are not measured here: off, so their listeners cost nothing.
    TRIBUTARY_HTTP_ENABLED: 'false',
    TRIBUTARY_COAP_ENABLED: 'false',
    ...options.env,
  })
  let ports: Record<string, number>
  try {
    const line = await proc.waitForLine(
      (l) => l.includes('"tributary started"'),
      'its "tributary started" line',
    )
    ports = (JSON.parse(line) as { ports: Record<string, number> }).ports
  } catch (err) {
    await proc.stop()
    throw err
  }
  const mqtt = ports['mqtt']
  const api = ports['api']
  if (mqtt === undefined || api === undefined) {
    await proc.stop()
    throw new BenchError(
      `tributary started without ${mqtt === undefined ? 'an mqtt' : 'an api'} listener ` +
        `(ports ${JSON.stringify(ports)}): is the MQTT adapter wired into the adapters role?`,
    )
  }
  let inspector: Inspector | undefined
  if (options.inspect === true) {
    try {
      const url = INSPECTOR_LINE.exec(
        await proc.waitForLine((l) => INSPECTOR_LINE.test(l), 'its inspector'),
      )![1]!
      inspector = await connectInspector(url)
    } catch (err) {
      await proc.stop()
      throw err
    }
  }
  return {
    label: 'tributary',
    pid: proc.child.pid!,
    mqttPort: mqtt,
    api: createApiClient({ url: `http://127.0.0.1:${api}`, token: options.adminToken, timeoutMs: 60_000 }),
    inspector,
    memoryAfterGc:
      inspector === undefined
        ? undefined
        : async () => {
            await inspector.collectGarbage()
            return inspector.memoryUsage()
          },
    tail: () => proc.lines.slice(-15).join('\n'),
    async stop() {
      inspector?.close()
      await proc.stop()
    },
  }
}

export type DeviceSecret = 'password' | 'token'

/**
 * Registers tenant `tenant` (when missing) and devices `<prefix>0` .. `<prefix>(count-1)` through
 * the API, each with a password (scrypt: ~100 ms of server CPU each) or a device token (a hash),
 * and returns their MQTT identities (clientId = device id).
 */
export async function registerDevices(
  api: ApiClient,
  tenant: string,
  options: { count: number; prefix: string; secret: DeviceSecret; concurrency: number },
): Promise<MqttIdentity[]> {
  try {
    await api.request('POST', '/tenants', { body: { id: tenant } })
  } catch (err) {
    if ((err as { status?: number }).status !== 409) throw err
  }
  const identities: MqttIdentity[] = new Array<MqttIdentity>(options.count)
  await runConcurrently(options.count, options.concurrency, async (i) => {
    const device = `${options.prefix}${i}`
    await api.request('POST', `/tenants/${tenant}/devices`, { body: { id: device } })
    let password: string
    if (options.secret === 'password') {
      password = randomBytes(12).toString('base64url')
      await api.request('PUT', `/tenants/${tenant}/devices/${device}/password`, { body: { password } })
    } else {
      const created = await api.request<{ secret: string }>(
        'POST',
        `/tenants/${tenant}/devices/${device}/credentials`,
        { body: { type: 'token' } },
      )
      password = created.body.secret
    }
    identities[i] = { clientId: device, username: `${device}@${tenant}`, password }
  })
  return identities
}

/** A topic prefix of its own per bench run, so the runs' ingress records never mix. */
export function benchTopicPrefix(scenario: string): string {
  return `bench-${scenario}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`
}

export interface BenchKafka {
  /** Records on the ingress topic of `prefix`, all partitions. */
  ingressRecords(prefix: string): Promise<number>
  /** Deletes the topics a bench tributary process created (`<prefix>.ingress`, `.registry`, ...). */
  deleteTopics(prefix: string): Promise<void>
  close(): Promise<void>
}

/** A Kafka client of the bench's own, to check what reached the broker and to clean up after. */
export async function openBenchKafka(brokers: readonly string[]): Promise<BenchKafka> {
  const bus = await createKafkaBus({ brokers: [...brokers], clientId: 'tributary-bench-mqtt' })
  return {
    async ingressRecords(prefix) {
      const offsets = await bus.admin.offsets(topicNames(prefix).ingress)
      return offsets.reduce((sum, p) => sum + p.next - p.earliest, 0)
    },
    async deleteTopics(prefix) {
      const names = (await bus.admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`))
      if (names.length > 0) await bus.admin.deleteTopics(names)
    },
    close: () => bus.close(),
  }
}
