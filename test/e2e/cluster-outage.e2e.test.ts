// Redis, the cluster state, taken away from running `tributary start` processes through a
// test-owned TCP proxy (connections reset, new ones refused; the shared Redis keeps serving everyone
// else). A process that serves MQTT devices cannot take a new connection without the cluster state,
// so it says it is not ready, naming the cluster state, and is ready again when Redis returns,
// without a restart. A process that serves devices over HTTP only keeps accepting their messages
// (without the rate check): it stays ready, and says what is degraded.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { curl } from '../helpers/curl.ts'
import { ADMIN_TOKEN, createApi, mosquitto } from '../helpers/mqtt.ts'
import type { TributaryProcess } from '../helpers/process.ts'
import { startProcess } from '../helpers/process.ts'
import type { TcpProxy } from '../helpers/tcp-proxy.ts'
import { startTcpProxy } from '../helpers/tcp-proxy.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'

const PASSWORD = 'correct horse battery'

interface Running {
  readonly proc: TributaryProcess
  readonly ports: Record<string, number>
}

let proxy: TcpProxy
const running: Running[] = []

async function start(env: Record<string, string>): Promise<Running> {
  const proc = startProcess(['start'], {
    TRIBUTARY_ADMIN_TOKEN: ADMIN_TOKEN,
    TRIBUTARY_REDIS_URL: `redis://${proxy.host}:${proxy.port}`,
    ...env,
  })
  const started = await proc.waitForLog((l) => l.msg === 'tributary started')
  const one = { proc, ports: started['ports'] as Record<string, number> }
  running.push(one)
  return one
}

const url = (on: Running, listener: string, path: string): string =>
  `http://127.0.0.1:${on.ports[listener]}${path}`

beforeAll(async () => {
  const redis = new URL(inject('redisUrl'))
  proxy = await startTcpProxy({ host: redis.hostname, port: Number(redis.port || 6379) })
})

afterAll(async () => {
  const codes = await Promise.all(running.map((r) => r.proc.stop('SIGTERM')))
  await proxy?.close()
  expect(codes.every((c) => c === 0)).toBe(true)
})

async function deviceOn(on: Running): Promise<{ tenant: string; device: string }> {
  const api = createApi(url(on, 'api', ''))
  const tenant = uniqueName('co')
  await api.createTenant(tenant)
  await api.createDevice(tenant, 'probe')
  await api.setPassword(tenant, 'probe', PASSWORD)
  return { tenant, device: 'probe' }
}

const readyz = (on: Running) => curl([url(on, 'management', '/readyz')])
const health = (on: Running) => curl([url(on, 'management', '/health')])

const httpPost = (on: Running, who: { tenant: string; device: string }) =>
  curl([
    '-u',
    `${who.device}@${who.tenant}:${PASSWORD}`,
    '-H',
    'Content-Type: application/json',
    '--data-binary',
    '{"celsius":21}',
    url(on, 'http', '/v1/sensors/temperature'),
  ])

const mqttPublish = (on: Running, who: { tenant: string; device: string }) =>
  mosquitto('mosquitto_pub', [
    ...['-h', '127.0.0.1', '-p', String(on.ports['mqtt']), '-V', 'mqttv311'],
    ...['-u', `${who.device}@${who.tenant}`, '-P', PASSWORD, '-q', '1', '-t', 'sensors/temperature'],
    ...['-m', '{"celsius":21}'],
  ])

describe('readiness with the cluster state (Redis) away (e2e: curl, mosquitto_pub)', () => {
  it('is not ready while Redis is away when it serves MQTT devices, and ready again once it returns', async () => {
    const all = await start({})
    const who = await deviceOn(all)
    expect((await readyz(all)).status).toBe(200)
    expect(await mqttPublish(all, who)).toMatchObject({ code: 0 })

    await proxy.cut()
    try {
      await waitUntil(async () => (await readyz(all)).status === 503, { timeoutMs: 20_000, intervalMs: 200 })
      const notReady = await readyz(all)
      expect(notReady.body).toMatch(/^not ready: .*cluster: Redis at 127\.0\.0\.1:\d+ /)
      expect(notReady.body).toMatch(/MQTT devices cannot connect/)
      const report = await health(all)
      expect(report.status).toBe(500)
      expect(report.json).toMatchObject({ status: 'failing', ready: false })
      expect(report.json.checks).toContainEqual(
        expect.objectContaining({ name: 'cluster', ok: false, critical: true }),
      )
      // What readiness says is what devices meet: MQTT refused with 3, HTTP accepted unchecked.
      const refused = await mqttPublish(all, who)
      expect(refused.stderr).toContain('Connection Refused: broker unavailable')
      expect((await httpPost(all, who)).status).toBe(202)
    } finally {
      await proxy.restore()
    }
    await waitUntil(async () => (await readyz(all)).status === 200, { timeoutMs: 20_000, intervalMs: 200 })
    expect((await readyz(all)).body).toBe('ready\n')
    expect(await mqttPublish(all, who)).toMatchObject({ code: 0 })
  })

  it('stays ready, saying what is degraded, when it serves devices over HTTP only', async () => {
    const httpOnly = await start({
      TRIBUTARY_MQTT_ENABLED: 'false',
      TRIBUTARY_MQTT_WS_ENABLED: 'false',
      TRIBUTARY_COAP_ENABLED: 'false',
    })
    const who = await deviceOn(httpOnly)
    await proxy.cut()
    try {
      await waitUntil(async () => (await health(httpOnly)).status === 500, {
        timeoutMs: 20_000,
        intervalMs: 200,
      })
      const report = await health(httpOnly)
      expect(report.json).toMatchObject({ status: 'degraded', ready: true })
      const cluster = (report.json.checks as Array<{ name: string; reason?: string }>).find(
        (c) => c.name === 'cluster',
      )
      expect(cluster).toMatchObject({ ok: false, critical: false })
      expect(cluster?.reason).toMatch(/without the rate check/)
      const ready = await readyz(httpOnly)
      expect(ready.status).toBe(200)
      expect(ready.body).toMatch(/^ready, degraded: cluster: Redis at /)
      expect((await httpPost(httpOnly, who)).status).toBe(202)
    } finally {
      await proxy.restore()
    }
    await waitUntil(async () => (await health(httpOnly)).status === 200, {
      timeoutMs: 20_000,
      intervalMs: 200,
    })
  })
})
