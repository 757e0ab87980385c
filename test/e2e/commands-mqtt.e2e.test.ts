// Commands over MQTT as users meet them, against a running `tributary start` on Kafka: curl sends
// commands through the API and mosquitto_sub (or an MQTT.js device) receives them on the device
// broker; a device answers a request-style command and the API call waiting for it returns the
// answer; mosquitto_pub sends a command on the application broker; a gateway receives its devices'
// commands; and another device — or another tenant's application — gets and sends nothing.
import { spawn } from 'node:child_process'
import mqtt from 'mqtt'
import type { IPublishPacket, MqttClient } from 'mqtt'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { curl } from '../helpers/curl.ts'
import type { KafkaTributary } from '../helpers/kafka-process.ts'
import { startOnKafka } from '../helpers/kafka-process.ts'
import { ADMIN_TOKEN, metricValue, mosquitto, waitForRecords } from '../helpers/mqtt.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'

const PASSWORD = 'correct horse battery'
let t: KafkaTributary
const open: MqttClient[] = []

beforeAll(async () => {
  t = await startOnKafka('e2e_cmdmqtt')
})

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.endAsync(true)))
})

afterAll(async () => {
  const code = await t?.proc.stop('SIGTERM')
  expect(code).toBe(0)
})

interface Tenant {
  readonly id: string
  /** API tokens of the tenant for the application broker. */
  readonly manager: string
  readonly reader: string
}

/** A tenant with devices that have the test password; `child` lists `gw-1` as its gateway. */
async function tenant(): Promise<Tenant> {
  const id = uniqueName('cm')
  await t.api.createTenant(id)
  for (const device of ['dev-a', 'dev-b', 'gw-1']) {
    await t.api.createDevice(id, device)
    await t.api.setPassword(id, device, PASSWORD)
  }
  await t.api.createDevice(id, 'child', { gateways: ['gw-1'] })
  const token = async (role: string): Promise<string> => {
    const created = await t.api.request('POST', `/tenants/${id}/tokens`, { name: role, role })
    expect(created.status).toBe(201)
    return created.body.secret as string
  }
  return { id, manager: await token('manager'), reader: await token('reader') }
}

/** POST …/commands/<name> with curl and the admin token. */
function sendCommand(tenant: string, device: string, name: string, body: string, query = 'ttl=60') {
  return curl([
    '-H',
    `Authorization: Bearer ${ADMIN_TOKEN}`,
    '-H',
    'Content-Type: text/plain',
    '--data-binary',
    body,
    `${t.url('api')}/api/v1/tenants/${tenant}/devices/${device}/commands/${name}?${query}`,
  ])
}

/** The device-side tests run on both protocol versions; a refused filter is 0x80 on 3.1.1, 0x87 on 5. */
const VERSIONS = [
  { name: '3.1.1', mosquitto: 'mqttv311', protocolVersion: 4, refused: 0x80 },
  { name: '5', mosquitto: 'mqttv5', protocolVersion: 5, refused: 0x87 },
] as const
type Version = (typeof VERSIONS)[number]

const deviceArgs = (tenant: string, device: string, version: Version = VERSIONS[0]): string[] => [
  ...['-h', '127.0.0.1', '-p', String(t.ports['mqtt']), '-V', version.mosquitto],
  ...['-u', `${device}@${tenant}`, '-P', PASSWORD],
]

/** mosquitto_sub -d -v: `subscribed` once its SUBACK arrived, `done` with its output when it exits. */
function subscriber(args: readonly string[]) {
  // stdbuf: mosquitto_sub's stdout is a pipe here, which C stdio would buffer until exit.
  const child = spawn('stdbuf', ['-oL', 'mosquitto_sub', '-d', '-v', ...args])
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    // 'close', not 'exit': output can still arrive after the exit.
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    }),
  )
  const subscribed = waitUntil(() => stdout.includes('received SUBACK'), {
    timeoutMs: 30_000,
    message: () => `a SUBACK; mosquitto_sub said ${stdout} ${stderr}`,
  })
  return { subscribed, done }
}

/** An MQTT.js device on the device broker, and every PUBLISH it receives. */
async function device(
  tenant: string,
  id: string,
  version: Version = VERSIONS[0],
): Promise<{ client: MqttClient; inbox: IPublishPacket[] }> {
  const client = await mqtt.connectAsync(
    `mqtt://127.0.0.1:${t.ports['mqtt']}`,
    {
      protocolVersion: version.protocolVersion,
      reconnectPeriod: 0,
      username: `${id}@${tenant}`,
      password: PASSWORD,
    },
    false,
  )
  open.push(client)
  const inbox: IPublishPacket[] = []
  client.on('message', (_topic, _payload, packet) => inbox.push(packet))
  return { client, inbox }
}

/** Granted QoS per filter, the failure code for a refused one (MQTT.js rejects a SUBACK that grants nothing). */
async function granted(client: MqttClient, filters: Record<string, { qos: 0 | 1 }>): Promise<number[]> {
  return client.subscribeAsync(filters).then(
    (grants) => grants.map((g) => g.qos),
    (err: { packet?: { granted?: number[] } }) => err.packet?.granted ?? [],
  )
}

describe.each(VERSIONS)('commands to MQTT $name devices (e2e)', (version) => {
  it('delivers a one-way command sent with curl to mosquitto_sub on command/<name>, and records it delivered', async () => {
    const tn = await tenant()
    const sub = subscriber([...deviceArgs(tn.id, 'dev-a', version), '-t', 'command/#', '-q', '1', '-C', '1'])
    await sub.subscribed
    const sent = await sendCommand(tn.id, 'dev-a', 'reboot', 'in-5-seconds')
    expect(sent.status, sent.body).toBe(202)
    const id = sent.json.id as string
    const { code, stdout } = await sub.done
    expect(code).toBe(0)
    expect(stdout).toContain('received PUBLISH (d0, q1, r0, m')
    expect(stdout).toContain('command/reboot in-5-seconds')
    const [status] = await waitForRecords(
      t.brokers,
      `${t.prefix}.events.${tn.id}`,
      (r) =>
        r.headers['ce_type'] === 'io.tributary.command.status.v1' && r.headers['ce_status'] === 'delivered',
    )
    expect(JSON.parse(status!.payload ?? '{}')).toMatchObject({
      command: id,
      name: 'reboot',
      status: 'delivered',
    })
  })

  it('returns the answer of an MQTT.js device to a request-style command sent with wait=5', async () => {
    const tn = await tenant()
    const { client } = await device(tn.id, 'dev-a', version)
    expect(await granted(client, { 'command/+/req/+': { qos: 1 } })).toEqual([1])
    client.on('message', (topic, payload) => {
      const [, name, , requestId] = topic.split('/')
      void client.publishAsync(
        `command/res/${requestId}/200`,
        JSON.stringify({ name, asked: payload.toString() }),
        { qos: 1 },
      )
    })
    const reply = await sendCommand(tn.id, 'dev-a', 'uptime', 'how-long', 'wait=5')
    expect(reply.status, reply.body).toBe(200)
    expect(reply.headers['tributary-command-status']).toBe('200')
    expect(JSON.parse(reply.body)).toEqual({ name: 'uptime', asked: 'how-long' })
  })

  it('delivers the commands of a device to its gateway on gw/<device>/command/<name>', async () => {
    const tn = await tenant()
    const sub = subscriber([
      ...deviceArgs(tn.id, 'gw-1', version),
      ...['-t', 'gw/child/command/#', '-q', '1', '-C', '1'],
    ])
    await sub.subscribed
    const sent = await sendCommand(tn.id, 'child', 'set-point', '21.5')
    expect(sent.status, sent.body).toBe(202)
    const { code, stdout } = await sub.done
    expect(code).toBe(0)
    expect(stdout).toContain('gw/child/command/set-point 21.5')
  })

  it("never shows a device another device's commands or responses, nor lets it listen as their gateway", async () => {
    const tn = await tenant()
    const victim = await device(tn.id, 'dev-a', version)
    const attacker = await device(tn.id, 'dev-b', version)
    expect(await granted(victim.client, { 'command/#': { qos: 1 } })).toEqual([1])
    expect(
      await granted(attacker.client, {
        'command/#': { qos: 1 },
        'gw/dev-a/command/#': { qos: 1 },
        'gw/+/command/#': { qos: 1 },
        '#': { qos: 1 },
      }),
    ).toEqual([1, version.refused, 1, version.refused])
    victim.client.on('message', (topic) => {
      const [, , , requestId] = topic.split('/')
      if (requestId !== undefined)
        void victim.client.publishAsync(`command/res/${requestId}/200`, 'secret', { qos: 1 })
    })
    const answered = await sendCommand(tn.id, 'dev-a', 'unlock', 'code-1234', 'wait=5')
    expect(answered.status, answered.body).toBe(200)
    expect(answered.body).toBe('secret')
    expect((await sendCommand(tn.id, 'dev-a', 'unlock', 'code-5678')).status).toBe(202)
    await waitUntil(() => victim.inbox.length === 2)

    // Then one command of its own: anything of the victim's routed to the attacker would be there first.
    expect((await sendCommand(tn.id, 'dev-b', 'marker', 'mine')).status).toBe(202)
    await waitUntil(() => attacker.inbox.length >= 1)
    expect(attacker.inbox.map((p) => [p.topic, p.payload.toString()])).toEqual([['command/marker', 'mine']])
    expect(victim.inbox.map((p) => p.payload.toString())).toEqual(['code-1234', 'code-5678'])
  })
})

describe('commands to MQTT 5 devices: request/response (e2e)', () => {
  it('gives mosquitto_sub -V mqttv5 a Response Topic, Correlation Data and the ttl left, and mosquitto_pub answers on that topic', async () => {
    const tn = await tenant()
    const v5 = VERSIONS[1]
    const format = '%t|%R|%D|%E|%p'
    const sub = subscriber([
      ...deviceArgs(tn.id, 'dev-a', v5),
      ...['-t', 'command/#', '-q', '1', '-C', '1', '-F', format],
    ])
    await sub.subscribed
    // The API call waits for the answer while the device reads the command and answers it.
    const reply = sendCommand(tn.id, 'dev-a', 'uptime', 'how-long', 'ttl=120&wait=20')
    const { code, stdout } = await sub.done
    expect(code).toBe(0)
    const line = stdout.split('\n').find((l) => l.startsWith('command/uptime/req/'))
    expect(line, stdout).toBeDefined()
    const [topic, responseTopic, correlation, expiry, payload] = line!.split('|')
    const requestId = topic!.split('/')[3]!
    expect(responseTopic).toBe(`command/res/${requestId}/200`)
    expect(correlation).toBe(requestId)
    expect(Number(expiry)).toBeGreaterThan(0)
    expect(Number(expiry)).toBeLessThanOrEqual(120)
    expect(payload).toBe('how-long')
    const answer = await mosquitto('mosquitto_pub', [
      ...deviceArgs(tn.id, 'dev-a', v5),
      ...['-q', '1', '-t', responseTopic!, '-D', 'publish', 'correlation-data', correlation!, '-m', 'up 5 s'],
    ])
    expect(answer.code, answer.stderr).toBe(0)
    const answered = await reply
    expect(answered.status, answered.body).toBe(200)
    expect(answered.headers['tributary-command-status']).toBe('200')
    expect(answered.body).toBe('up 5 s')
  })
})

describe('commands on the application broker (e2e)', () => {
  it('delivers a command published with mosquitto_pub on the application broker', async () => {
    const tn = await tenant()
    const sub = subscriber([...deviceArgs(tn.id, 'dev-a'), '-t', 'command/ping', '-q', '1', '-C', '1'])
    await sub.subscribed
    const pub = await mosquitto('mosquitto_pub', [
      ...['-h', '127.0.0.1', '-p', String(t.ports['appMqtt']), '-V', 'mqttv311'],
      ...['-u', tn.id, '-P', tn.manager, '-q', '1', '-t', `command/${tn.id}/dev-a/ping`, '-m', 'hello'],
    ])
    expect(pub.code, pub.stderr).toBe(0)
    const { code, stdout } = await sub.done
    expect(code).toBe(0)
    expect(stdout).toContain('command/ping hello')
  })

  it("refuses a command for another tenant's device, and one from a reader, on the application broker", async () => {
    const mine = await tenant()
    const theirs = await tenant()
    const victim = await device(theirs.id, 'dev-a')
    expect(await granted(victim.client, { 'command/#': { qos: 1 } })).toEqual([1])
    const management = t.ports['management']!
    const before = {
      other: await metricValue(management, 'tributary_app_mqtt_refusals_total', { reason: 'other-tenant' }),
      reader: await metricValue(management, 'tributary_app_mqtt_refusals_total', {
        reason: 'not-authorized',
      }),
    }
    const app = ['-h', '127.0.0.1', '-p', String(t.ports['appMqtt']), '-V', 'mqttv311', '-q', '1']
    // A refused QoS 1 publish ends the connection before any PUBACK: mosquitto_pub exits non-zero.
    const foreign = await mosquitto('mosquitto_pub', [
      ...app,
      ...['-u', mine.id, '-P', mine.manager, '-t', `command/${theirs.id}/dev-a/unlock`, '-m', 'x'],
    ])
    expect(foreign.code).not.toBe(0)
    const reader = await mosquitto('mosquitto_pub', [
      ...app,
      ...['-u', theirs.id, '-P', theirs.reader, '-t', `command/${theirs.id}/dev-a/unlock`, '-m', 'y'],
    ])
    expect(reader.code).not.toBe(0)
    expect(
      await metricValue(management, 'tributary_app_mqtt_refusals_total', { reason: 'other-tenant' }),
    ).toBe(before.other + 1)
    expect(
      await metricValue(management, 'tributary_app_mqtt_refusals_total', { reason: 'not-authorized' }),
    ).toBe(before.reader + 1)
    // The tenant's own manager gets through; nothing refused came before it.
    const allowed = await mosquitto('mosquitto_pub', [
      ...app,
      ...['-u', theirs.id, '-P', theirs.manager, '-t', `command/${theirs.id}/dev-a/marker`, '-m', 'ok'],
    ])
    expect(allowed.code, allowed.stderr).toBe(0)
    await waitUntil(() => victim.inbox.length >= 1)
    expect(victim.inbox.map((p) => [p.topic, p.payload.toString()])).toEqual([['command/marker', 'ok']])
  })
})
