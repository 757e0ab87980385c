// The application MQTT broker as an application meets it: a running `tributary start` on Kafka,
// a device posting with curl, and mosquitto_sub logged in as the tenant with an API token
// receiving the processed event as a structured JSON CloudEvent; another tenant's token, or a
// filter outside the tenant, gets nothing.
import { spawn } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { curl } from '../helpers/curl.ts'
import type { KafkaTributary } from '../helpers/kafka-process.ts'
import { startOnKafka } from '../helpers/kafka-process.ts'
import { metricValue, mosquitto, waitForRecords } from '../helpers/mqtt.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'

const PASSWORD = 'correct horse battery'
let t: KafkaTributary
let port = 0

beforeAll(async () => {
  t = await startOnKafka('e2e_appmqtt')
  port = t.ports['appMqtt'] ?? 0
})

afterAll(async () => {
  const code = await t?.proc.stop('SIGTERM')
  expect(code).toBe(0)
})

/** A tenant with a device that has a password, a reader API token, and its event topic in place. */
async function tenantWithDevice(): Promise<{ id: string; token: string }> {
  const id = uniqueName('am')
  await t.api.createTenant(id)
  await t.api.createDevice(id, 'boiler-7')
  await t.api.setPassword(id, 'boiler-7', PASSWORD)
  const created = await t.api.request('POST', `/tenants/${id}/tokens`, { name: 'dashboard', role: 'reader' })
  expect(created.status).toBe(201)
  // A first event makes sure the processors created the tenant topic.
  await post(id, 'warmup', { warm: true })
  await waitForRecords(t.brokers, `${t.prefix}.events.${id}`, (r) => r.headers['ce_subject'] === 'warmup')
  return { id, token: created.body.secret as string }
}

async function post(tenant: string, channel: string, body: unknown): Promise<void> {
  const reply = await curl([
    '-u',
    `boiler-7@${tenant}:${PASSWORD}`,
    '-H',
    'Content-Type: application/json',
    '--data-binary',
    JSON.stringify(body),
    `${t.url('http')}/v1/${channel}`,
  ])
  expect(reply.status).toBe(202)
}

/** mosquitto_sub -d: resolves `subscribed` once its SUBACK arrived, `done` with its output when it exits. */
function subscriber(args: readonly string[]) {
  // stdbuf: mosquitto_sub's stdout is a pipe here, which C stdio would buffer until exit.
  const child = spawn('stdbuf', [
    '-oL',
    'mosquitto_sub',
    ...['-d', '-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv311'],
    ...args,
  ])
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

describe('application MQTT broker (e2e: curl → Kafka → mosquitto_sub)', () => {
  it('reports its listener in the start log', () => {
    expect(port).toBeGreaterThan(0)
    expect(t.ports['appMqtt']).toBe(port)
  })

  it('delivers the event a device posted to mosquitto_sub as a structured JSON CloudEvent', async () => {
    const tenant = await tenantWithDevice()
    const sub = subscriber([
      '-u',
      tenant.id,
      '-P',
      tenant.token,
      '-t',
      `app/${tenant.id}/#`,
      '-q',
      '1',
      '-C',
      '1',
    ])
    await sub.subscribed
    await post(tenant.id, 'sensors/temperature', { celsius: 61.5 })
    const { code, stdout } = await sub.done
    expect(code).toBe(0)
    expect(stdout).toContain(`received PUBLISH (d0, q1, r0, m`)
    expect(stdout).toContain(`'app/${tenant.id}/sensors/temperature'`)
    const line = stdout.split('\n').find((l) => l.startsWith('{'))
    const event = JSON.parse(line ?? 'null') as Record<string, unknown>
    expect(event).toMatchObject({
      specversion: '1.0',
      type: 'io.tributary.telemetry.v1',
      source: `tributary://${tenant.id}/boiler-7`,
      subject: 'sensors/temperature',
      tenant: tenant.id,
      device: 'boiler-7',
      datacontenttype: 'application/json',
      data: { celsius: 61.5 },
    })
    await waitUntil(
      async () =>
        (await metricValue(t.ports['management']!, 'tributary_app_mqtt_messages_out_total', {
          tenant: tenant.id,
        })) === 1,
    )
  })

  it('refuses another tenant’s token at CONNECT and another tenant’s topics at SUBSCRIBE', async () => {
    const mine = await tenantWithDevice()
    const theirs = await tenantWithDevice()
    const refused = await mosquitto('mosquitto_sub', [
      ...['-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv311'],
      ...['-u', mine.id, '-P', theirs.token, '-t', `app/${mine.id}/#`, '-C', '1'],
    ])
    expect(refused.code, JSON.stringify(refused)).not.toBe(0)
    expect(refused.stderr).toMatch(/not authori[sz]ed/i)

    const denied = await mosquitto('mosquitto_sub', [
      ...['-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv311'],
      ...['-u', mine.id, '-P', mine.token, '-t', `app/${theirs.id}/#`, '-C', '1'],
    ])
    expect(`${denied.stdout}${denied.stderr}`).toMatch(/subscription requests were denied/i)
  })
})
