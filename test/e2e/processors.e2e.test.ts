// Processors as a data engineer sees them: a running `tributary start` on Kafka, a device posting
// with curl, and kcat reading the processed events, in order, from `<prefix>.events.<tenant>`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { curl } from '../helpers/curl.ts'
import type { Api } from '../helpers/mqtt.ts'
import { waitForRecords } from '../helpers/mqtt.ts'
import type { TributaryProcess } from '../helpers/process.ts'
import { uniqueName } from '../helpers/wait.ts'
import { startOnKafka } from '../helpers/kafka-process.ts'

const PASSWORD = 'processors e2e secret'

let brokers = ''
let prefix = ''
let proc: TributaryProcess
let api: Api
let base = ''

beforeAll(async () => {
  const t = await startOnKafka('e2e_proc')
  ;({ brokers, prefix, proc, api } = t)
  base = t.url('http')
})

afterAll(async () => {
  const code = await proc?.stop('SIGTERM')
  expect(code).toBe(0)
})

describe('processors (e2e: curl → Kafka → kcat)', () => {
  it('delivers a device’s events to the tenant topic in order, with their ce_ headers', async () => {
    const tenant = uniqueName('pr')
    await api.createTenant(tenant)
    await api.createDevice(tenant, 'meter-1')
    await api.setPassword(tenant, 'meter-1', PASSWORD)
    const sent: string[] = []
    for (let seq = 0; seq < 5; seq++) {
      const body = JSON.stringify({ seq, id: uniqueName('m') })
      sent.push(body)
      const reply = await curl([
        '-u',
        `meter-1@${tenant}:${PASSWORD}`,
        '-H',
        'Content-Type: application/json',
        '--data-binary',
        body,
        `${base}/v1/power`,
      ])
      expect(reply.status).toBe(202)
    }
    const records = await waitForRecords(
      brokers,
      `${prefix}.events.${tenant}`,
      (r) => r.headers['ce_type'] === 'io.tributary.telemetry.v1',
      { count: 5, timeoutMs: 30_000 },
    )
    expect(records.map((r) => r.payload)).toEqual(sent)
    // The tenant's registry changes pass through to its topic as well.
    const changes = await waitForRecords(
      brokers,
      `${prefix}.events.${tenant}`,
      (r) => r.headers['ce_type'] === 'io.tributary.registry.v1',
      { count: 3 },
    )
    expect(changes.map((r) => JSON.parse(r.payload ?? '{}') as { resource: string; op: string })).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ resource: 'tenant', op: 'created' }),
        expect.objectContaining({ resource: 'device', op: 'created', device: 'meter-1' }),
        expect.objectContaining({ resource: 'credential', op: 'created', device: 'meter-1' }),
      ]),
    )
    expect(new Set(records.map((r) => r.partition)).size).toBe(1)
    expect(records[0]!.key).toBe(`${tenant}/meter-1`)
    expect(records[0]!.headers).toMatchObject({
      ce_specversion: '1.0',
      ce_source: `tributary://${tenant}/meter-1`,
      ce_subject: 'power',
      ce_tenant: tenant,
      ce_device: 'meter-1',
      ce_protocol: 'http',
      'content-type': 'application/json',
    })
  })
})
