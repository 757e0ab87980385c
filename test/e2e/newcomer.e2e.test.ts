// The first hour of a new user (issue 15), played against a running process: a clone-like
// `tributary start --demo` with no port configured, on a machine where the default MQTT port is
// taken (the test holds it when nothing else does); the demo's own copy-paste commands send over
// MQTT, HTTP and CoAP; `tributary events tail`, application MQTT and a webhook to a local receiver
// see the events; a restart switched to Kafka (a fresh topic prefix) with that webhook subscription
// present keeps the ports and tokens, revoking a token disconnects its application MQTT client, and
// the demo's admin token creates a tenant.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import type { IncomingHttpHeaders, Server as HttpServer } from 'node:http'
import { createServer } from 'node:net'
import type { AddressInfo, Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { curl } from '../helpers/curl.ts'
import { holdDefaultPorts } from '../helpers/default-ports.ts'
import { startProcess } from '../helpers/process.ts'
import type { TributaryProcess } from '../helpers/process.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'

const LAUNCHER = fileURLToPath(new URL('../../main/tributary.js', import.meta.url))
const PORTS = [
  'TRIBUTARY_MANAGEMENT_PORT',
  'TRIBUTARY_API_PORT',
  'TRIBUTARY_MQTT_PORT',
  'TRIBUTARY_MQTTS_PORT',
  'TRIBUTARY_MQTT_WS_PORT',
  'TRIBUTARY_COAP_PORT',
  'TRIBUTARY_HTTP_PORT',
  'TRIBUTARY_APP_MQTT_PORT',
]
const dataDir = mkdtempSync(join(tmpdir(), 'tributary-newcomer-'))
/** A fresh clone's environment: no port and no host set (the helper's port-0 defaults undone). */
const firstEnv: Record<string, string> = {
  ...Object.fromEntries([...PORTS, 'TRIBUTARY_HOST'].map((v) => [v, ''])),
  TRIBUTARY_DATA_DIR: dataDir,
  // Shorter than the 30 s default, so that the revoked token's connection ends within the test.
  TRIBUTARY_CREDENTIAL_RECHECK_MS: '1000',
}

interface Banner {
  readonly text: string
  readonly apiUrl: string
  readonly adminToken: string
  readonly apiToken: string
  readonly ports: Record<string, number>
}

interface Child {
  readonly child: ChildProcess
  stdout: string
  stderr: string
  readonly exited: Promise<number | null>
}

const running: TributaryProcess[] = []
const children: ChildProcess[] = []
let blocker: Server | undefined
let receiver: HttpServer
let receiverUrl = ''
const received: Array<{ headers: IncomingHttpHeaders; body: string }> = []
let first: Banner
let second: Banner
let subscriptionId = ''

/** Holds `port` on every address when it is free, so that it is taken whatever runs here. */
async function holdIfFree(port: number): Promise<Server | undefined> {
  const server = createServer()
  return new Promise((resolve) => {
    server.once('error', () => resolve(undefined))
    server.listen(port, '0.0.0.0', () => resolve(server))
  })
}

/** Runs a command in the background, collecting what it prints. */
function background(file: string, args: string[], env: Record<string, string> = {}): Child {
  const child = spawn(file, args, {
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  const result: Child = {
    child,
    stdout: '',
    stderr: '',
    // 'close', not 'exit': the last output can arrive after the exit, and callers read it then.
    exited: new Promise((resolve) => child.once('close', (code) => resolve(code))),
  }
  child.stdout?.on('data', (b: Buffer) => (result.stdout += b.toString()))
  child.stderr?.on('data', (b: Buffer) => (result.stderr += b.toString()))
  return result
}

/** Runs a command to its end. */
async function run(file: string, args: string[], env: Record<string, string> = {}): Promise<Child> {
  const child = background(file, args, env)
  await child.exited
  return child
}

/** `tributary <args>` as installed (the plain-JS launcher), talking to the demo's API. */
const tributary = (args: string[], banner: Banner, token = banner.adminToken): Promise<Child> =>
  run(process.execPath, [LAUNCHER, ...args], { TRIBUTARY_API_URL: banner.apiUrl, TRIBUTARY_API_TOKEN: token })

/** A command line of the banner, run as the user would paste it (trailing comment dropped). */
function pasted(banner: Banner, startsWith: string): string {
  const line = banner.text
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.startsWith(startsWith))
  expect(line, `the banner shows a command starting with ${startsWith}`).toBeDefined()
  return line!.replace(/\s+# .*$/, '')
}

const shell = (command: string, banner: Banner): Promise<Child> =>
  run('sh', ['-c', command], { TRIBUTARY_API_URL: banner.apiUrl, TRIBUTARY_API_TOKEN: banner.adminToken })

async function startDemo(env: Record<string, string>): Promise<Banner> {
  const proc = startProcess(['start', '--demo'], env)
  running.push(proc)
  await proc.waitForLog((l) => l.msg === 'demo ready', 180_000)
  await waitUntil(() => proc.stderr.join('\n').includes('Or have them POSTed to a webhook'), {
    message: () => `the demo banner; stderr: ${proc.stderr.join('\n')}`,
  })
  const text = proc.stderr.join('\n')
  const started = proc.lines.find((l) => l.msg === 'tributary started')!
  const match = (re: RegExp): string => {
    const m = re.exec(text)
    expect(m, `the banner matches ${re}`).not.toBeNull()
    return m![1]!
  }
  return {
    text,
    apiUrl: match(/export TRIBUTARY_API_URL=(\S+) /),
    adminToken: match(/admin token \(every tenant\): (\S+)/),
    apiToken: match(/API token \(admin on tenant demo\): (\S+)/),
    ports: started['ports'] as Record<string, number>,
  }
}

async function stopDemo(): Promise<void> {
  const proc = running.pop()!
  expect(await proc.stop('SIGTERM')).toBe(0)
}

/** Telemetry sent over HTTP by the demo device (the banner's curl line). */
async function sendOverHttp(banner: Banner, celsius: number): Promise<void> {
  const sent = await shell(
    pasted(banner, 'curl -si -u device1@demo').replace('21.5', String(celsius)),
    banner,
  )
  expect(sent.stdout).toMatch(/^HTTP\/1\.1 202/)
}

let releaseDefaultPorts: (() => void) | undefined

beforeAll(async () => {
  // This file starts processes on the default ports: no other test file may use them meanwhile.
  releaseDefaultPorts = await holdDefaultPorts()
  // Mosquitto holds 1883 on the development machines; elsewhere the test holds it.
  blocker = await holdIfFree(1883)
  receiver = createHttpServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (c: Buffer) => chunks.push(c))
    request.on('end', () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8') })
      response.writeHead(204).end()
    })
  })
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/events`
})

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
  await Promise.all(running.splice(0).map((p) => p.stop('SIGKILL')))
  await new Promise((resolve) => receiver?.close(resolve))
  await new Promise((resolve) => (blocker === undefined ? resolve(undefined) : blocker.close(resolve)))
  releaseDefaultPorts?.()
})

describe('the first hour of a new user', () => {
  it('starts the demo with no port configured, moving the taken ones and saying so', async () => {
    first = await startDemo(firstEnv)
    expect(first.text).toContain(`MQTT: 1883 is taken, listening on ${first.ports['mqtt']}`)
    // Every move the banner reports is where the listener is.
    for (const [, label, port] of first.text.matchAll(/^ {2}(.+): \d+ is taken, listening on (\d+)/gm)) {
      expect(Object.values(first.ports), `${label} listens on ${port}`).toContain(Number(port))
    }
    expect(first.text).toContain('the demo set TRIBUTARY_WEBHOOK_ALLOW_PRIVATE=true')
    expect(first.apiUrl).toBe(`http://127.0.0.1:${first.ports['api']}`)
    // The tokens are kept for the next start, readable by the owner only.
    const file = join(dataDir, 'demo.json')
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
      adminToken: first.adminToken,
      apiToken: first.apiToken,
    })
    expect(statSync(file).mode & 0o777).toBe(0o600)
  })

  it('sends as the demo device over MQTT, HTTP and CoAP as printed, and watches it with events tail', async () => {
    const tail = background(process.execPath, [LAUNCHER, 'events', 'tail', '--tenant', 'demo', '--json'], {
      TRIBUTARY_API_URL: first.apiUrl,
      TRIBUTARY_API_TOKEN: first.adminToken,
    })
    await waitUntil(() => tail.stderr.includes('watching the events of tenant demo'), {
      message: () => `events tail started; stderr: ${tail.stderr}`,
    })
    const mqttPub = await shell(pasted(first, `mosquitto_pub -h 127.0.0.1 -p ${first.ports['mqtt']}`), first)
    expect(mqttPub.child.exitCode, mqttPub.stderr).toBe(0)
    await sendOverHttp(first, 21.5)
    const coap = await shell(pasted(first, 'coap-client-notls -m post'), first)
    expect(coap.child.exitCode, coap.stderr).toBe(0)

    const telemetry = (): Array<Record<string, unknown>> =>
      tail.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((e) => e['type'] === 'io.tributary.telemetry.v1')
    await waitUntil(() => telemetry().length >= 3, {
      message: () => `three telemetry events in the tail; got: ${tail.stdout}`,
    })
    expect(telemetry().map((e) => e['protocol'])).toEqual(expect.arrayContaining(['mqtt', 'http', 'coap']))
    for (const event of telemetry()) {
      expect(event).toMatchObject({ tenant: 'demo', device: 'device1', data: { celsius: 21.5 } })
    }
    tail.child.kill('SIGINT')
    expect(await tail.exited).toBe(0)

    // The line format, replaying what the topic keeps.
    const lines = await tributary(
      ['events', 'tail', '--tenant', 'demo', '--type', 'telemetry', '--from', 'earliest', '--count', '3'],
      first,
    )
    expect(lines.child.exitCode, lines.stderr).toBe(0)
    expect(lines.stdout.trim().split('\n')).toHaveLength(3)
    for (const line of lines.stdout.trim().split('\n'))
      expect(line).toMatch(/^\S+ {2}device1 {2}telemetry {2}sensors\/temperature {2}\{"celsius":21\.5\}$/)
  })

  it('receives over application MQTT with the printed mosquitto_sub line', async () => {
    // -d reports the SUBACK; stdbuf, so that it arrives while mosquitto_sub runs (a pipe buffers).
    const sub = background('sh', ['-c', `stdbuf -oL ${pasted(first, 'mosquitto_sub -h 127.0.0.1')} -C 1 -d`])
    await waitUntil(() => sub.stdout.includes('SUBACK'), {
      message: () => `mosquitto_sub subscribed; stdout: ${sub.stdout} stderr: ${sub.stderr}`,
    })
    await sendOverHttp(first, 22)
    expect(await sub.exited).toBe(0)
    expect(sub.stdout).toMatch(/app\/demo\/sensors\/temperature \{"specversion":"1\.0"/)
    expect(sub.stdout).toContain('"data":{"celsius":22}')
  })

  it('posts the events to a local webhook receiver, which the demo allows', async () => {
    const create = pasted(first, 'curl -s -H "Authorization: Bearer $TRIBUTARY_API_TOKEN"').replace(
      'http://127.0.0.1:9000/events',
      receiverUrl,
    )
    const created = await shell(create, first)
    const body = JSON.parse(created.stdout) as { subscription?: { id: string }; id?: string }
    subscriptionId = body.subscription?.id ?? body.id ?? ''
    expect(subscriptionId, created.stdout).not.toBe('')
    await sendOverHttp(first, 23)
    await waitUntil(() => received.some((r) => r.body === '{"celsius":23}'), {
      message: () => `the webhook receiver got the event; got ${JSON.stringify(received)}`,
    })
    const delivered = received.find((r) => r.body === '{"celsius":23}')!
    expect(delivered.headers['ce-type']).toBe('io.tributary.telemetry.v1')
    expect(delivered.headers['webhook-signature']).toMatch(/^v1,/)
  })

  it('restarts on Kafka with the subscription present, keeping ports and tokens', async () => {
    await stopDemo()
    const prefix = uniqueName('newcomer').replaceAll('-', '_')
    second = await startDemo({
      ...firstEnv,
      TRIBUTARY_KAFKA_BROKERS: inject('kafkaBrokers'),
      TRIBUTARY_TOPIC_PREFIX: prefix,
    })
    expect(second.ports).toEqual(first.ports)
    expect([second.adminToken, second.apiToken]).toEqual([first.adminToken, first.apiToken])
    expect(second.text).toContain(`-C -t ${prefix}.events.demo`)

    // The subscription delivers from the new bus.
    await sendOverHttp(second, 24)
    await waitUntil(() => received.some((r) => r.body === '{"celsius":24}'), {
      message: () => `the webhook receiver got the event from Kafka; got ${JSON.stringify(received)}`,
    })
    const tail = await tributary(
      ['events', 'tail', '--tenant', 'demo', '--type', 'telemetry', '--from', 'earliest', '--count', '1'],
      second,
    )
    expect(tail.stdout).toContain('{"celsius":24}')

    // The demo's admin token administers the registry.
    const acme = await tributary(['tenant', 'create', 'acme'], second)
    expect({ code: acme.child.exitCode, out: acme.stdout }).toEqual({ code: 0, out: 'tenant acme created\n' })

    // A plain GET of the event WebSocket says how to connect.
    const plain = await curl([`${second.apiUrl}/api/v1/tenants/demo/events`])
    expect(plain.status).toBe(426)
    expect(plain.headers['upgrade']).toBe('websocket')
  })

  it('disconnects an application MQTT client once its API token is revoked through the API', async () => {
    const banner = second
    const created = await tributary(
      ['token', 'create', '--tenant', 'demo', '--name', 'watcher', '--json'],
      banner,
    )
    const { secret, token } = JSON.parse(created.stdout) as { secret: string; token: { id: string } }
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${banner.ports['appMqtt']}`, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      username: 'demo',
      password: secret,
    })
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))
    const granted = await client.subscribeAsync('app/demo/#', { qos: 1 })
    expect(granted.map((g) => g.qos)).toEqual([1])
    const revoked = await curl([
      '-X',
      'DELETE',
      '-H',
      `Authorization: Bearer ${banner.adminToken}`,
      `${banner.apiUrl}/api/v1/tenants/demo/tokens/${token.id}`,
    ])
    expect(revoked.status).toBe(204)
    await closed
    expect(client.connected).toBe(false)
    await stopDemo()
  })
})
