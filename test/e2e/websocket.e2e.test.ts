// WebSocket pull of a tenant's events as an application meets it: a running `tributary start` on the
// Kafka bus, a device posting with curl, and a `ws` client holding a reader API token that receives
// the processed event as a structured JSON CloudEvent; SIGTERM closes the socket with 1001.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { curl } from '../helpers/curl.ts'
import type { Api } from '../helpers/mqtt.ts'
import { ADMIN_TOKEN } from '../helpers/mqtt.ts'
import type { TributaryProcess } from '../helpers/process.ts'
import { startOnKafka } from '../helpers/kafka-process.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'

const PASSWORD = 'correct horse battery'

let proc: TributaryProcess
let api: Api
let apiUrl = ''
let httpUrl = ''
const sockets: WebSocket[] = []

beforeAll(async () => {
  const t = await startOnKafka('e2e_ws')
  ;({ proc, api } = t)
  apiUrl = t.url('api').replace('http://', 'ws://')
  httpUrl = t.url('http')
})

afterAll(async () => {
  const closes = sockets
    .filter((ws) => ws.readyState === ws.OPEN)
    .map((ws) => new Promise<number>((resolve) => ws.on('close', (code) => resolve(code))))
  const code = await proc?.stop('SIGTERM')
  expect(code).toBe(0)
  expect(await Promise.all(closes)).toEqual(closes.map(() => 1001))
})

function openSocket(url: string): Promise<{ ws: WebSocket; events: Array<Record<string, unknown>> }> {
  const ws = new WebSocket(url, ['cloudevents.json'])
  sockets.push(ws)
  const events: Array<Record<string, unknown>> = []
  ws.on('message', (data: Buffer) => events.push(JSON.parse(data.toString()) as Record<string, unknown>))
  return new Promise((resolve, reject) => {
    ws.on('open', () => resolve({ ws, events }))
    ws.on('error', reject)
  })
}

describe('WebSocket event stream (e2e: curl, ws)', () => {
  it('delivers what a device posts to a reader as a structured CloudEvent', async () => {
    const tenant = uniqueName('ws')
    await api.createTenant(tenant)
    await api.createDevice(tenant, 'boiler-1')
    await api.setPassword(tenant, 'boiler-1', PASSWORD)
    const created = await api.request('POST', `/tenants/${tenant}/tokens`, {
      name: 'dashboard',
      role: 'reader',
    })
    expect(created.status).toBe(201)
    const token = created.body.secret as string

    const { ws, events } = await openSocket(
      `${apiUrl}/api/v1/tenants/${tenant}/events?access_token=${token}&channel=sensors/%2B`,
    )
    expect(ws.protocol).toBe('cloudevents.json')
    for (const channel of ['logs/debug', 'sensors/temperature']) {
      const reply = await curl([
        '-u',
        `boiler-1@${tenant}:${PASSWORD}`,
        '-H',
        'Content-Type: application/json',
        '--data-binary',
        JSON.stringify({ celsius: 61.5, channel }),
        `${httpUrl}/v1/${channel}`,
      ])
      expect(reply.status).toBe(202)
    }
    await waitUntil(() => events.length >= 1, { timeoutMs: 30_000, message: () => 'the event on the socket' })
    expect(events[0]).toMatchObject({
      specversion: '1.0',
      type: 'io.tributary.telemetry.v1',
      source: `tributary://${tenant}/boiler-1`,
      subject: 'sensors/temperature',
      tenant,
      device: 'boiler-1',
      protocol: 'http',
      datacontenttype: 'application/json',
      data: { celsius: 61.5, channel: 'sensors/temperature' },
    })
    // The filtered-out channel came first on the same partition: nothing else is on its way.
    expect(events).toHaveLength(1)
  })

  it('resumes a named group on Kafka where it left off, and replays from earliest', async () => {
    const tenant = uniqueName('wsg')
    await api.createTenant(tenant)
    await api.createDevice(tenant, 'meter-1')
    await api.setPassword(tenant, 'meter-1', PASSWORD)
    const post = async (n: number) => {
      const reply = await curl([
        '-u',
        `meter-1@${tenant}:${PASSWORD}`,
        '-H',
        'Content-Type: application/json',
        '--data-binary',
        JSON.stringify({ n }),
        `${httpUrl}/v1/meter`,
      ])
      expect(reply.status).toBe(202)
    }
    // Registry changes of the tenant are on its topic too (io.tributary.registry.v1): telemetry only.
    const url = `${apiUrl}/api/v1/tenants/${tenant}/events?access_token=${ADMIN_TOKEN}&type=io.tributary.telemetry.v1`
    const first = await openSocket(`${url}&group=billing`)
    await post(1)
    await post(2)
    await waitUntil(() => first.events.length >= 2, { timeoutMs: 30_000, message: () => 'events 1 and 2' })
    const left = new Promise<void>((resolve) => first.ws.on('close', () => resolve()))
    first.ws.close()
    await left

    await post(3)
    const again = await openSocket(`${url}&group=billing`)
    await post(4)
    await waitUntil(() => again.events.length >= 2, { timeoutMs: 30_000, message: () => 'events 3 and 4' })
    expect(again.events.map((e) => e['data'])).toEqual([{ n: 3 }, { n: 4 }])

    const replay = await openSocket(`${url}&from=earliest`)
    await waitUntil(() => replay.events.length >= 4, { timeoutMs: 30_000, message: () => 'the replay' })
    expect(replay.events.map((e) => e['data'])).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }])
    expect(first.events.map((e) => e['data'])).toEqual([{ n: 1 }, { n: 2 }])
  })
})
