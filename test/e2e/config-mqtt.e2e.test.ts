// Desired configuration over MQTT as operators and devices meet it, against a running `tributary
// start` on Kafka: mosquitto_sub subscribed to `config` receives the configuration at once and again
// after a curl PUT through the API (the change reaches the adapter as a registry event); the device
// reports with mosquitto_pub on `config/applied`, which the API shows and kcat reads as an event; a
// report of an id never sent closes the connection and records nothing; an MQTT.js device asks on
// config/req/<id> and reads the answer on config/res/<id>; a gateway gets and reports its devices'
// configurations on gw/<D>/config.
import { spawn } from 'node:child_process'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { configId as configIdOf } from '../../core/registry/device-config.ts'
import { curl } from '../helpers/curl.ts'
import type { KafkaTributary } from '../helpers/kafka-process.ts'
import { startOnKafka } from '../helpers/kafka-process.ts'
import { ADMIN_TOKEN, mosquitto, pubackRc, waitForRecords } from '../helpers/mqtt.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'

const PASSWORD = 'correct horse battery'
let t: KafkaTributary

beforeAll(async () => {
  t = await startOnKafka('e2e_cfgmqtt')
})

afterAll(async () => {
  const code = await t?.proc.stop('SIGTERM')
  expect(code).toBe(0)
})

/** The push-and-report test runs on both protocol versions. */
const VERSIONS = [
  { name: '3.1.1', mosquitto: 'mqttv311' },
  { name: '5', mosquitto: 'mqttv5' },
] as const
type Version = (typeof VERSIONS)[number]

const deviceArgs = (tenant: string, device: string, version: Version = VERSIONS[0]): string[] => [
  ...['-h', '127.0.0.1', '-p', String(t.ports['mqtt']), '-V', version.mosquitto],
  ...['-u', `${device}@${tenant}`, '-P', PASSWORD],
]
const admin = (...args: string[]) =>
  curl(['-H', `authorization: Bearer ${ADMIN_TOKEN}`, '-H', 'content-type: application/json', ...args])

/** mosquitto_sub -v on `filter` (default `config`): the configurations it printed so far, and its exit. */
function configSubscriber(
  tenant: string,
  device: string,
  count: number,
  filter = 'config',
  version: Version = VERSIONS[0],
) {
  // stdbuf: mosquitto_sub's stdout is a pipe here, which C stdio would buffer until exit.
  const child = spawn('stdbuf', [
    '-oL',
    'mosquitto_sub',
    ...deviceArgs(tenant, device, version),
    ...['-q', '1', '-v', '-C', String(count), '-t', filter],
  ])
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const done = new Promise<number | null>((resolve) =>
    // 'close', not 'exit': output can still arrive after the exit.
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve(code)
    }),
  )
  const received = (): Array<{ topic: string; configId: string; config?: unknown }> =>
    stdout
      .split('\n')
      .filter((line) => /^config(\/res\/\S+)? \{/.test(line))
      .map((line) => {
        const space = line.indexOf(' ')
        const body = JSON.parse(line.slice(space + 1)) as { configId: string; config?: unknown }
        return { topic: line.slice(0, space), ...body }
      })
  const got = (n: number) =>
    waitUntil(() => received().length >= n, {
      timeoutMs: 30_000,
      message: () => `${n} configuration(s) on mosquitto_sub; it said ${stdout} ${stderr}`,
    })
  return { received, got, done }
}

describe('configuration over MQTT (e2e: mosquitto_sub, mosquitto_pub, curl, kcat)', () => {
  it.each(VERSIONS)(
    'pushes the configuration on subscribe and on change, and records the report (MQTT $name)',
    async (version) => {
      const tenant = uniqueName('cq')
      await t.api.createTenant(tenant)
      await t.api.createDevice(tenant, 'thermo', { appVersion: 'v1' })
      await t.api.setPassword(tenant, 'thermo', PASSWORD)
      const api = `${t.url('api')}/api/v1/tenants/${tenant}`
      expect((await admin('-X', 'PUT', '-d', '{"interval":60}', `${api}/config`)).status).toBe(200)

      const sub = configSubscriber(tenant, 'thermo', 2, 'config', version)
      await sub.got(1)
      const [first] = sub.received()
      expect(first!.config).toEqual({ interval: 60 })

      // Written through the API: the registry change reaches the adapter, which pushes the new id.
      expect((await admin('-X', 'PUT', '-d', '{"interval":5}', `${api}/config/app-versions/v1`)).status).toBe(
        200,
      )
      await sub.got(2)
      expect(await sub.done).toBe(0)
      const [, second] = sub.received()
      expect(second!.config).toEqual({ interval: 5 })
      expect(second!.configId).not.toBe(first!.configId)
      const effective = await admin(`${api}/devices/thermo/config/effective`)
      expect(effective.json.configId).toBe(second!.configId)

      const reported = await mosquitto('mosquitto_pub', [
        ...deviceArgs(tenant, 'thermo', version),
        ...[
          '-q',
          '1',
          '-t',
          'config/applied',
          '-m',
          JSON.stringify({ configId: second!.configId, statusCode: 200 }),
        ],
      ])
      expect(reported.code, reported.stderr).toBe(0)
      const state = await admin(`${api}/devices/thermo/config/effective`)
      expect(state.json.state).toMatchObject({
        delivered: { configId: second!.configId, protocol: 'mqtt' },
        applied: { configId: second!.configId, statusCode: 200, protocol: 'mqtt' },
      })

      const topic = `${t.prefix}.events.${tenant}`
      const events = await waitForRecords(
        t.brokers,
        topic,
        (r) => /^io\.tributary\.config\.(delivered|applied)\.v1$/.test(r.headers['ce_type'] ?? ''),
        { count: 3, timeoutMs: 30_000 },
      )
      expect(events.map((r) => [r.headers['ce_type'], r.headers['ce_protocol']])).toEqual([
        ['io.tributary.config.delivered.v1', 'mqtt'],
        ['io.tributary.config.delivered.v1', 'mqtt'],
        ['io.tributary.config.applied.v1', 'mqtt'],
      ])
      expect(JSON.parse(String(events[2]!.payload))).toEqual({
        configId: second!.configId,
        statusCode: 200,
        reasonPhrase: null,
      })

      // An id never sent: nothing recorded. MQTT 3.1.1 has no negative PUBACK, so the connection ends;
      // MQTT 5 answers PUBACK 0x99 payload format invalid.
      const refused = await mosquitto('mosquitto_pub', [
        ...deviceArgs(tenant, 'thermo', version),
        ...['-d', '-q', '1', '-t', 'config/applied', '-m', JSON.stringify({ configId: 'A'.repeat(22) })],
      ])
      if (version.mosquitto === 'mqttv311') expect(refused.code).not.toBe(0)
      else expect(pubackRc(refused), refused.stdout).toBe(0x99)
      const after = await admin(`${api}/devices/thermo/config/effective`)
      expect(after.json.state.applied.configId).toBe(second!.configId)
    },
  )

  it('pushes what a label-selector rule adds when the rule is written and when the device’s labels change', async () => {
    const tenant = uniqueName('cr')
    await t.api.createTenant(tenant)
    await t.api.createDevice(tenant, 'meter', { labels: { region: 'eu' } })
    await t.api.setPassword(tenant, 'meter', PASSWORD)
    const api = `${t.url('api')}/api/v1/tenants/${tenant}`
    expect((await admin('-X', 'PUT', '-d', '{"ntp":"pool"}', `${api}/config`)).status).toBe(200)

    const sub = configSubscriber(tenant, 'meter', 3)
    await sub.got(1)
    const rule = JSON.stringify({ selector: { region: 'eu' }, config: { ntp: 'eu.pool' } })
    expect((await admin('-X', 'PUT', '-d', rule, `${api}/config/rules/eu`)).status).toBe(201)
    await sub.got(2)
    // The device leaves the rule's selector: it is pushed the configuration without the rule.
    expect(
      (await admin('-X', 'PATCH', '-d', '{"labels":{"region":"us"}}', `${api}/devices/meter`)).status,
    ).toBe(200)
    await sub.got(3)
    expect(await sub.done).toBe(0)
    expect(sub.received().map((r) => r.config)).toEqual([
      { ntp: 'pool' },
      { ntp: 'eu.pool' },
      { ntp: 'pool' },
    ])

    // Each write changed the device's id: one config.changed event each, read with kcat.
    const changed = await waitForRecords(
      t.brokers,
      `${t.prefix}.events.${tenant}`,
      (r) => r.headers['ce_type'] === 'io.tributary.config.changed.v1',
      { count: 3, timeoutMs: 30_000 },
    )
    const [first, second, third] = sub.received()
    expect(changed.map((r) => JSON.parse(String(r.payload)) as unknown)).toEqual([
      { configId: first!.configId, previousConfigId: configIdOf({}) },
      { configId: second!.configId, previousConfigId: first!.configId },
      { configId: third!.configId, previousConfigId: second!.configId },
    ])
  })

  it('answers config/req/<id> on config/res/<id>: the configuration, or its id alone when the device has it', async () => {
    const tenant = uniqueName('cq')
    await t.api.createTenant(tenant)
    await t.api.createDevice(tenant, 'meter')
    await t.api.setPassword(tenant, 'meter', PASSWORD)
    const api = `${t.url('api')}/api/v1/tenants/${tenant}`
    expect((await admin('-X', 'PUT', '-d', '{"unit":"kWh"}', `${api}/devices/meter/config`)).status).toBe(200)
    expect((await admin('-X', 'PUT', '-d', '{"rate":7}', `${api}/config/app-versions/v7`)).status).toBe(200)
    const effective = await admin(`${api}/devices/meter/config/effective`)
    const configId = String(effective.json.configId)

    // One connection subscribes and asks (a second connection of the device would take its session over).
    const client = await mqtt.connectAsync(
      `mqtt://127.0.0.1:${t.ports['mqtt']}`,
      { protocolVersion: 4, reconnectPeriod: 0, username: `meter@${tenant}`, password: PASSWORD },
      false,
    )
    try {
      const inbox: Array<{ topic: string; body: unknown }> = []
      client.on('message', (topic, payload) => inbox.push({ topic, body: JSON.parse(payload.toString()) }))
      expect((await client.subscribeAsync('config/res/+', { qos: 1 }))[0]?.qos).toBe(1)
      await client.publishAsync('config/req/r1', '{}', { qos: 1 })
      await waitUntil(() => inbox.length >= 1, { message: () => 'an answer on config/res/r1' })
      await client.publishAsync('config/req/r2', JSON.stringify({ configId }), { qos: 1 })
      await waitUntil(() => inbox.length >= 2, { message: () => 'an answer on config/res/r2' })
      // The device names the application version it now runs: recorded, and answered for it.
      await client.publishAsync('config/req/r4', JSON.stringify({ configId, appVersion: 'v7' }), { qos: 1 })
      await waitUntil(() => inbox.length >= 3, { message: () => 'an answer on config/res/r4' })
      const v7 = { unit: 'kWh', rate: 7 }
      expect(inbox).toEqual([
        { topic: 'config/res/r1', body: { configId, config: { unit: 'kWh' } } },
        { topic: 'config/res/r2', body: { configId } },
        { topic: 'config/res/r4', body: { configId: configIdOf(v7), config: v7 } },
      ])
      expect((await admin(`${api}/devices/meter`)).json.appVersion).toBe('v7')
      // Another config/… filter is refused (SUBACK 0x80).
      const refused = await client.subscribeAsync('config/other', { qos: 1 }).then(
        (grants) => grants.map((g) => g.qos),
        (err: { packet?: { granted?: number[] } }) => err.packet?.granted ?? [],
      )
      expect(refused).toEqual([128])
    } finally {
      await client.endAsync(true)
    }

    for (const body of ['{"configId":7}', '{"appVersion":"a/b"}']) {
      const malformed = await mosquitto('mosquitto_pub', [
        ...deviceArgs(tenant, 'meter'),
        ...['-q', '1', '-t', 'config/req/r3', '-m', body],
      ])
      expect(malformed.code, body).not.toBe(0)
    }
    expect((await admin(`${api}/devices/meter`)).json.appVersion).toBe('v7')
  })

  it("gives a gateway its devices' configurations on gw/<D>/config and takes their reports", async () => {
    const tenant = uniqueName('cq')
    await t.api.createTenant(tenant)
    await t.api.createDevice(tenant, 'hub')
    await t.api.setPassword(tenant, 'hub', PASSWORD)
    await t.api.createDevice(tenant, 'probe', { gateways: ['hub'] })
    await t.api.createDevice(tenant, 'stranger')
    const api = `${t.url('api')}/api/v1/tenants/${tenant}`
    expect((await admin('-X', 'PUT', '-d', '{"rate":1}', `${api}/devices/probe/config`)).status).toBe(200)

    const client = await mqtt.connectAsync(
      `mqtt://127.0.0.1:${t.ports['mqtt']}`,
      { protocolVersion: 4, reconnectPeriod: 0, username: `hub@${tenant}`, password: PASSWORD },
      false,
    )
    try {
      const inbox: Array<{ topic: string; body: { configId: string; config: unknown } }> = []
      client.on('message', (topic, payload) =>
        inbox.push({ topic, body: JSON.parse(payload.toString()) as { configId: string; config: unknown } }),
      )
      const grants = await client
        .subscribeAsync({ 'gw/probe/config': { qos: 1 }, 'gw/stranger/config': { qos: 1 } })
        .then(
          (g) => g.map((x) => x.qos),
          (err: { packet?: { granted?: number[] } }) => err.packet?.granted ?? [],
        )
      expect(grants).toEqual([1, 128])
      await waitUntil(() => inbox.length >= 1, { message: () => 'the configuration of probe' })
      expect(inbox[0]).toMatchObject({ topic: 'gw/probe/config', body: { config: { rate: 1 } } })

      expect((await admin('-X', 'PUT', '-d', '{"rate":2}', `${api}/devices/probe/config`)).status).toBe(200)
      await waitUntil(() => inbox.length >= 2, { message: () => 'the changed configuration of probe' })
      expect(inbox[1]).toMatchObject({ topic: 'gw/probe/config', body: { config: { rate: 2 } } })

      const configId = inbox[1]!.body.configId
      await client.publishAsync('gw/probe/config/applied', JSON.stringify({ configId }), { qos: 1 })
      const state = await admin(`${api}/devices/probe/config/effective`)
      expect(state.json.state).toMatchObject({
        delivered: { configId, protocol: 'mqtt' },
        applied: { configId, statusCode: 200, protocol: 'mqtt' },
      })

      // The gateway asks for probe's configuration (7/CMP request/response, gateway form).
      const grantsRes = await client.subscribeAsync({ 'gw/probe/config/res/+': { qos: 1 } })
      expect(grantsRes.map((g) => g.qos)).toEqual([1])
      await client.publishAsync('gw/probe/config/req/g1', '{}', { qos: 1 })
      await waitUntil(() => inbox.length >= 3, { message: () => 'an answer on gw/probe/config/res/g1' })
      await client.publishAsync('gw/probe/config/req/g2', JSON.stringify({ configId }), { qos: 1 })
      await waitUntil(() => inbox.length >= 4, { message: () => 'an answer on gw/probe/config/res/g2' })
      expect(inbox.slice(2)).toEqual([
        { topic: 'gw/probe/config/res/g1', body: { configId, config: { rate: 2 } } },
        { topic: 'gw/probe/config/res/g2', body: { configId } },
      ])

      // A tenant-level change that leaves probe's id as it was writes nothing to gw/probe/config:
      // the next message there is the one of probe's next change.
      expect((await admin('-X', 'PUT', '-d', '{"rate":9}', `${api}/config`)).status).toBe(200)
      expect((await admin('-X', 'PUT', '-d', '{"rate":3}', `${api}/devices/probe/config`)).status).toBe(200)
      await waitUntil(() => inbox.length >= 5, { message: () => 'the next configuration of probe' })
      expect(inbox[4]).toMatchObject({ topic: 'gw/probe/config', body: { config: { rate: 3 } } })
    } finally {
      await client.endAsync(true)
    }
    // A request for a device that does not list the gateway ends the connection.
    const stranger = await mosquitto('mosquitto_pub', [
      ...deviceArgs(tenant, 'hub'),
      ...['-q', '1', '-t', 'gw/stranger/config/req/g3', '-m', '{}'],
    ])
    expect(stranger.code).not.toBe(0)
    const events = await waitForRecords(
      t.brokers,
      `${t.prefix}.events.${tenant}`,
      (r) => r.headers['ce_type'] === 'io.tributary.config.applied.v1',
    )
    expect(events[0]!.headers).toMatchObject({ ce_device: 'probe', ce_sender: 'hub' })
  })
})
