// `tributary start --roles adapters,api` as the server a bench measures (on Kafka, every listener on
// a free loopback port), and the bench's tenant and devices registered through its management API.
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { createApiClient } from '../main/cli/api-client.ts'
import type { ApiClient } from '../main/cli/api-client.ts'
import { BenchError, runConcurrently } from './harness.ts'
import type { Inspector } from './inspector.ts'
import { INSPECTOR_LINE, connectInspector } from './inspector.ts'
import type { ServerProcess } from './server-process.ts'
import { spawnReady } from './server-process.ts'
import { NODE_FLAGS } from '../main/node-flags.ts'

const CLI = fileURLToPath(new URL('../main/cli.ts', import.meta.url))

export interface TributaryOptions {
  readonly brokers: readonly string[]
  /** Registry and data directory; kept by stop() so a later process finds the same devices. */
  readonly dataDir: string
  readonly topicPrefix: string
  /** A random one when not given. */
  readonly adminToken?: string | undefined
  /** The device listener under test: its port is the process's `port`. */
  readonly listener: 'mqtt' | 'http' | 'coap'
  /** More TRIBUTARY_* variables (listeners off, limits raised for the load). */
  readonly env?: Readonly<Record<string, string>> | undefined
  /** Start with the inspector on loopback, to collect garbage and read memory from outside. */
  readonly inspect?: boolean | undefined
  /** The --roles of the process (default `adapters,api`). */
  readonly roles?: string | undefined
}

export interface TributaryProcess extends ServerProcess {
  readonly api: ApiClient
  /** The API listener's base URL and the admin token, for callers that send their own requests. */
  readonly apiUrl: string
  readonly adminToken: string
  readonly inspector: Inspector | undefined
}

export async function startTributary(options: TributaryOptions): Promise<TributaryProcess> {
  const adminToken = options.adminToken ?? randomBytes(24).toString('base64url')
  const node = [
    process.execPath,
    ...NODE_FLAGS,
    ...(options.inspect === true ? ['--inspect=127.0.0.1:0'] : []),
    CLI,
  ]
  const { proc, line } = await spawnReady(
    'tributary',
    [...node, 'start', '--roles', options.roles ?? 'adapters,api'],
    {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      TRIBUTARY_HOST: '127.0.0.1',
      TRIBUTARY_DATA_DIR: options.dataDir,
      TRIBUTARY_KAFKA_BROKERS: options.brokers.join(','),
      TRIBUTARY_TOPIC_PREFIX: options.topicPrefix,
      TRIBUTARY_ADMIN_TOKEN: adminToken,
      TRIBUTARY_MANAGEMENT_PORT: '0',
      TRIBUTARY_API_PORT: '0',
      TRIBUTARY_MQTT_PORT: '0',
      TRIBUTARY_MQTTS_PORT: '0',
      TRIBUTARY_MQTT_WS_PORT: '0',
      TRIBUTARY_HTTP_PORT: '0',
      TRIBUTARY_COAP_PORT: '0',
      ...options.env,
    },
    {
      match: (l) => l.includes('"tributary started"'),
      what: 'its "tributary started" line',
    },
  )
  const ports = (JSON.parse(line) as { ports: Record<string, number> }).ports
  const port = ports[options.listener]
  const api = ports['api']
  if (port === undefined || api === undefined) {
    await proc.stop()
    throw new BenchError(
      `tributary started without ${port === undefined ? `its ${options.listener}` : 'an api'} listener ` +
        `(ports ${JSON.stringify(ports)}): is that adapter wired into the adapters role?`,
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
    port,
    api: createApiClient({ url: `http://127.0.0.1:${api}`, token: adminToken, timeoutMs: 60_000 }),
    apiUrl: `http://127.0.0.1:${api}`,
    adminToken,
    inspector,
    memoryAfterGc:
      inspector === undefined
        ? undefined
        : async () => {
            await inspector.collectGarbage()
            return inspector.memoryUsage()
          },
    tail: proc.tail,
    async stop() {
      inspector?.close()
      await proc.stop()
    },
  }
}

/** A registered device: its id (the MQTT client id), `<device>@<tenant>` and its secret. */
export interface DeviceIdentity {
  readonly clientId: string
  readonly username: string
  readonly password: string
}

export type DeviceSecret = 'password' | 'token'

/**
 * Registers tenant `tenant` (when missing) and devices `<prefix>0` .. `<prefix>(count-1)` through
 * the API, each with a password (scrypt: ~100 ms of server CPU each) or a device token (a hash).
 */
export async function registerDevices(
  api: ApiClient,
  tenant: string,
  options: { count: number; prefix: string; secret: DeviceSecret; concurrency: number },
): Promise<DeviceIdentity[]> {
  try {
    await api.request('POST', '/tenants', { body: { id: tenant } })
  } catch (err) {
    if ((err as { status?: number }).status !== 409) throw err
  }
  const identities: DeviceIdentity[] = new Array<DeviceIdentity>(options.count)
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
