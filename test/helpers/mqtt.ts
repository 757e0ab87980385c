// What the MQTT e2e tests drive a running tributary with, as a user would: mosquitto_pub and
// mosquitto_sub (exit code, stderr), kcat reading the Kafka topics (key, ce_ headers, value), and
// the management API with the admin token to set up tenants, devices and credentials.
import { execFile } from 'node:child_process'
import { connect as tcpConnect } from 'node:net'
import type { Socket } from 'node:net'
import { createPki } from '../fixtures/pki.ts'
import type { Pki } from '../fixtures/pki.ts'
import { kafkaBrokers } from '../setup/kafka-env.ts'
import { startProcess } from './process.ts'
import type { TributaryProcess } from './process.ts'
import { uniqueName, waitUntil } from './wait.ts'

export const ADMIN_TOKEN = 'e2e-mqtt-admin-token-0123456789abcdef'

export interface ToolResult {
  /** Exit code, or null when a signal (or the timeout) ended the tool. */
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs mosquitto_pub, mosquitto_sub or mosquitto_rr to its end (bounded) and captures what it says. */
export function mosquitto(
  tool: 'mosquitto_pub' | 'mosquitto_sub' | 'mosquitto_rr',
  args: readonly string[],
  timeoutMs = 15_000,
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(tool, [...args], { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number' && err.killed !== true) {
        reject(new Error(`${tool} could not run`, { cause: err })) // ENOENT ...
        return
      }
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr })
    })
  })
}

/** The PUBACK reason code `mosquitto_pub -V mqttv5 -d` printed, or undefined when none came. */
export function pubackRc(result: ToolResult): number | undefined {
  const match = /received PUBACK \(Mid: \d+, RC:(\d+)\)/.exec(result.stdout)
  return match === null ? undefined : Number(match[1])
}

/** Waits for `promise` at most `ms` from now, else fails naming `what`: the bound is the assertion. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

/** One Kafka record as `kcat -J` prints it, headers folded into an object. */
export interface KafkaRecord {
  readonly topic: string
  readonly partition: number
  readonly offset: number
  readonly key: string | null
  readonly headers: Readonly<Record<string, string>>
  readonly payload: string | null
}

/** Every record of `topic` from the beginning to the current end (`kcat -C -J -e`). */
export async function readTopic(brokers: string, topic: string): Promise<KafkaRecord[]> {
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      'kcat',
      ['-C', '-b', brokers, '-t', topic, '-o', 'beginning', '-e', '-q', '-J'],
      { timeout: 30_000, maxBuffer: 256 * 1024 * 1024 },
      (err, out, stderr) =>
        err === null ? resolve(out) : reject(new Error(`kcat: ${stderr}`, { cause: err })),
    )
  })
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const raw = JSON.parse(line) as {
        topic: string
        partition: number
        offset: number
        key: string | null
        headers?: string[] | null
        payload: string | null
      }
      const headers: Record<string, string> = {}
      const pairs = raw.headers ?? []
      for (let i = 0; i + 1 < pairs.length; i += 2) headers[pairs[i]!] = pairs[i + 1]!
      return { ...raw, headers }
    })
}

/** Polls the topic with kcat until `count` records match (bounded); returns the matches in offset order. */
export async function waitForRecords(
  brokers: string,
  topic: string,
  match: (record: KafkaRecord) => boolean,
  options: { count?: number; timeoutMs?: number } = {},
): Promise<KafkaRecord[]> {
  const count = options.count ?? 1
  let found: KafkaRecord[] = []
  await waitUntil(
    async () => {
      found = (await readTopic(brokers, topic)).filter(match)
      return found.length >= count
    },
    {
      timeoutMs: options.timeoutMs ?? 15_000,
      intervalMs: 200,
      message: () => `${count} matching record(s) on ${topic}, found ${found.length}`,
    },
  )
  return found.sort((a, b) => a.partition - b.partition || a.offset - b.offset)
}

/** The data of a connection event, parsed. */
export interface ConnectionData {
  readonly status: 'connected' | 'disconnected'
  readonly listener: string
  readonly reason?: string
  readonly remote?: string
}

export const isConnection = (r: KafkaRecord): boolean => r.headers['ce_type'] === 'io.tributary.connection.v1'
export const isTelemetry = (r: KafkaRecord): boolean => r.headers['ce_type'] === 'io.tributary.telemetry.v1'
export const connectionData = (r: KafkaRecord): ConnectionData =>
  JSON.parse(r.payload ?? 'null') as ConnectionData

export interface ApiReply {
  readonly status: number
  readonly body: any // eslint-disable-line @typescript-eslint/no-explicit-any -- read freely in tests
}

/** The management API with the admin token; every helper throws on an unexpected status. */
export interface Api {
  request(method: string, path: string, body?: unknown): Promise<ApiReply>
  createTenant(id: string, fields?: Record<string, unknown>): Promise<void>
  patchTenant(id: string, fields: Record<string, unknown>): Promise<void>
  createDevice(tenant: string, id: string, fields?: Record<string, unknown>): Promise<void>
  patchDevice(tenant: string, id: string, fields: Record<string, unknown>): Promise<void>
  setPassword(tenant: string, device: string, password: string): Promise<{ id: string }>
  /** POST a credential; the credential's id and the secret the 201 carries (token, generated PSK key). */
  addCredential(
    tenant: string,
    device: string,
    body: Record<string, unknown>,
  ): Promise<{ id: string; secret: string | undefined }>
  deleteCredential(tenant: string, device: string, id: string): Promise<void>
}

export function createApi(base: string, token = ADMIN_TOKEN): Api {
  const request = async (method: string, path: string, body?: unknown): Promise<ApiReply> => {
    const response = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    })
    const text = await response.text()
    return { status: response.status, body: text === '' ? undefined : JSON.parse(text) }
  }
  const expectStatus = async (want: number, method: string, path: string, body?: unknown) => {
    const reply = await request(method, path, body)
    if (reply.status !== want) {
      throw new Error(`${method} ${path}: ${reply.status} ${JSON.stringify(reply.body)} (wanted ${want})`)
    }
    return reply
  }
  const devicePath = (tenant: string, device: string) =>
    `/tenants/${tenant}/devices/${encodeURIComponent(device)}`
  return {
    request,
    createTenant: async (id, fields = {}) =>
      void (await expectStatus(201, 'POST', '/tenants', { id, ...fields })),
    patchTenant: async (id, fields) => void (await expectStatus(200, 'PATCH', `/tenants/${id}`, fields)),
    createDevice: async (tenant, id, fields = {}) =>
      void (await expectStatus(201, 'POST', `/tenants/${tenant}/devices`, { id, ...fields })),
    patchDevice: async (tenant, id, fields) =>
      void (await expectStatus(200, 'PATCH', devicePath(tenant, id), fields)),
    setPassword: async (tenant, device, password) => {
      const reply = await expectStatus(200, 'PUT', `${devicePath(tenant, device)}/password`, { password })
      return { id: reply.body.id as string }
    },
    addCredential: async (tenant, device, body) => {
      const reply = await expectStatus(201, 'POST', `${devicePath(tenant, device)}/credentials`, body)
      return { id: reply.body.credential.id as string, secret: reply.body.secret as string | undefined }
    },
    deleteCredential: async (tenant, device, id) =>
      void (await expectStatus(204, 'DELETE', `${devicePath(tenant, device)}/credentials/${id}`)),
  }
}

const mqttString = (text: string): Buffer => {
  const bytes = Buffer.from(text, 'utf8')
  return Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes])
}

/**
 * A bare TCP MQTT 3.1.1 session, written byte by byte (§3.1): for devices that misbehave in ways
 * real clients will not (going silent past their keepalive, sending malformed packets). Resolves
 * with the socket once the CONNACK accepted the connection.
 */
export function rawSession(
  port: number,
  login: { username: string; password: string; keepaliveSeconds: number },
): Promise<Socket> {
  const payload = Buffer.concat([
    mqttString(`raw-${Math.random().toString(36).slice(2, 10)}`),
    mqttString(login.username),
    mqttString(login.password),
  ])
  const variable = Buffer.concat([
    mqttString('MQTT'),
    // level 4; flags: user name, password, clean session; keepalive
    Buffer.from([4, 0xc2, login.keepaliveSeconds >> 8, login.keepaliveSeconds & 0xff]),
  ])
  const length = variable.length + payload.length
  if (length > 127) throw new RangeError('rawSession keeps CONNECT under 128 bytes')
  const packet = Buffer.concat([Buffer.from([0x10, length]), variable, payload])
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: '127.0.0.1', port }, () => socket.write(packet))
    socket.once('error', reject)
    socket.once('data', (data: Buffer) => {
      // CONNACK: 0x20, length 2, session present, return code [MQTT-3.2.2]
      if (data[0] === 0x20 && data[3] === 0) resolve(socket)
      else reject(new Error(`CONNACK refused: ${data.toString('hex')}`))
    })
  })
}

/** A sample of the process's /metrics (0 when the series does not exist yet). */
export async function metricValue(
  managementPort: number,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${managementPort}/metrics`)).text()
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match?.[1] !== name) continue
    const present = (match[2] ?? '').split(/,(?=[a-zA-Z_]+=")/)
    if (wanted.every((pair) => present.includes(pair))) return Number(match[3])
  }
  return 0
}

/** Bound listener ports from the "tributary started" log line. */
export interface MqttPorts {
  readonly management: number
  readonly api: number
  readonly mqtt: number
  readonly mqtts: number
  readonly mqttWs: number
  /** The device HTTP listener (uploads, `/v1/config`). */
  readonly http: number
}

export interface MqttTributary {
  readonly proc: TributaryProcess
  readonly ports: MqttPorts
  readonly api: Api
}

/**
 * Starts `tributary start` (every role) with the admin token and every MQTT listener on port 0
 * unless `env` says otherwise, and waits for it to report its ports.
 */
export async function startMqttTributary(env: Record<string, string>): Promise<MqttTributary> {
  const proc = startProcess(['start'], {
    TRIBUTARY_ADMIN_TOKEN: ADMIN_TOKEN,
    TRIBUTARY_MQTT_PORT: '0',
    TRIBUTARY_MQTTS_PORT: '0',
    TRIBUTARY_MQTT_WS_PORT: '0',
    ...env,
  })
  try {
    const started = await proc.waitForLog((l) => l.msg === 'tributary started')
    const ports = started['ports'] as MqttPorts
    return { proc, ports, api: createApi(`http://127.0.0.1:${ports.api}`) }
  } catch (err) {
    await proc.stop('SIGKILL')
    throw err
  }
}

/** A running tributary on Kafka with every MQTT listener (TLS with a throwaway PKI), and its topics. */
export interface MqttE2e {
  readonly brokers: string
  readonly ingress: string
  readonly pki: Pki
  readonly tributary: MqttTributary
}

/** Starts {@link startMqttTributary} on a topic prefix of its own (`name` plus a unique suffix), TLS on. */
export async function startMqttE2e(name: string, env: Record<string, string>): Promise<MqttE2e> {
  const brokers = kafkaBrokers()
  const prefix = uniqueName(name).replaceAll('-', '_')
  const pki = await createPki()
  const tributary = await startMqttTributary({
    TRIBUTARY_KAFKA_BROKERS: brokers,
    TRIBUTARY_TOPIC_PREFIX: prefix,
    TRIBUTARY_MQTTS_ENABLED: 'true',
    TRIBUTARY_MQTTS_CERT_FILE: pki.server.certFile,
    TRIBUTARY_MQTTS_KEY_FILE: pki.server.keyFile,
    ...env,
  })
  return { brokers, ingress: `${prefix}.ingress`, pki, tributary }
}
