// The device CoAP endpoint as devices and data engineers meet it: a running `tributary start` on the
// Kafka bus, driven with Debian's coap-client (libcoap3-bin, no TLS build) over UDP; what it wrote
// is read back from Kafka with kcat, and "nothing reached the bus" is the ingress end offsets
// (kcat -Q) not moving, checked against a positive control that does move them.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { coapBasic, coapClient } from '../helpers/coap.ts'
import type { CoapResult } from '../helpers/coap.ts'
import { readTopic, waitForRecords } from '../helpers/mqtt.ts'
import type { Api, KafkaRecord } from '../helpers/mqtt.ts'
import type { TributaryProcess } from '../helpers/process.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'
import { startOnKafka } from '../helpers/kafka-process.ts'

const MAX_PAYLOAD = 4_096
const PASSWORD = 'correct horse battery'
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

let brokers = ''
let ingress = ''
let proc: TributaryProcess
let api: Api
let coapPort = 0
let files = ''

beforeAll(async () => {
  files = mkdtempSync(join(tmpdir(), 'tributary-coap-e2e-'))
  const t = await startOnKafka('e2e_coap', { TRIBUTARY_COAP_MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD) })
  ;({ brokers, ingress, proc, api } = t)
  coapPort = t.ports['coap']!
})

afterAll(async () => {
  const code = await proc?.stop('SIGTERM')
  rmSync(files, { recursive: true, force: true })
  expect(code).toBe(0)
})

/** Runs coap-client against the process's CoAP listener. */
const coap = (args: readonly string[], path: string): Promise<CoapResult> => coapClient(coapPort, args, path)

const basic = (device: string, tenant: string, password = PASSWORD): string[] =>
  coapBasic(device, tenant, password)

/** The ingress topic's end offset per partition, as kcat -Q reports it. */
async function endOffsets(): Promise<Record<string, number>> {
  const run = (args: string[]) =>
    new Promise<string>((resolve, reject) =>
      execFile('kcat', args, { timeout: 30_000 }, (err, out, stderr) =>
        err === null ? resolve(out) : reject(new Error(`kcat: ${stderr}`, { cause: err })),
      ),
    )
  const metadata = JSON.parse(await run(['-L', '-J', '-b', brokers, '-t', ingress])) as {
    topics: Array<{ topic: string; partitions: Array<{ partition: number }> }>
  }
  const partitions = metadata.topics.find((t) => t.topic === ingress)!.partitions.map((p) => p.partition)
  expect(partitions.length).toBeGreaterThan(0)
  const query = partitions.flatMap((p) => ['-t', `${ingress}:${p}:-1`])
  const answer = JSON.parse(await run(['-Q', '-J', '-b', brokers, ...query])) as Record<
    string,
    Record<string, { partition: number; offset: number }>
  >
  const offsets: Record<string, number> = {}
  for (const [key, value] of Object.entries(answer[ingress] ?? {})) {
    if (key !== 'topic') offsets[key] = value.offset
  }
  expect(Object.keys(offsets)).toHaveLength(partitions.length)
  return offsets
}
const total = (offsets: Record<string, number>): number => Object.values(offsets).reduce((a, b) => a + b, 0)

async function tenantWithDevices(
  devices: Array<string | [string, Record<string, unknown>]>,
  password = PASSWORD,
): Promise<string> {
  const tenant = uniqueName('co')
  await api.createTenant(tenant)
  for (const entry of devices) {
    const [id, fields] = typeof entry === 'string' ? [entry, {}] : entry
    await api.createDevice(tenant, id, fields)
    await api.setPassword(tenant, id, password)
  }
  return tenant
}

const keyed = (tenant: string, device: string) => (r: KafkaRecord) => r.key === `${tenant}/${device}`
const marker = (): string => JSON.stringify({ id: uniqueName('msg'), celsius: 21.5 })

describe('CoAP adapter (e2e: coap-client, kcat)', () => {
  it('turns a confirmable POST with option 4209 into a telemetry CloudEvent on Kafka, answered 2.04', async () => {
    const tenant = await tenantWithDevices(['boiler-7'])
    const payload = marker()
    const result = await coap(
      ['-m', 'post', ...basic('boiler-7', tenant), '-t', '50', '-e', payload],
      '/v1/sensors/temperature',
    )
    expect(result).toMatchObject({ exit: 0, code: '2.04' })
    // Piggybacked on the ACK, or (when the bus took over 500 ms) a separate confirmable response.
    expect(['ACK', 'CON']).toContain(result.types.at(-1))

    const [record] = await waitForRecords(brokers, ingress, keyed(tenant, 'boiler-7'))
    expect(record!.payload).toBe(payload)
    expect(record!.headers).toMatchObject({
      ce_specversion: '1.0',
      ce_type: 'io.tributary.telemetry.v1',
      ce_source: `tributary://${tenant}/boiler-7`,
      ce_subject: 'sensors/temperature',
      ce_tenant: tenant,
      ce_device: 'boiler-7',
      ce_protocol: 'coap',
      'content-type': 'application/json',
    })
    expect(record!.headers['ce_id']).toMatch(UUID_V7)
    expect(record!.headers['ce_sender']).toBeUndefined()
  })

  it('takes a non-confirmable POST with a device token in the query, answered with a NON 2.04', async () => {
    const tenant = await tenantWithDevices(['tracker'])
    const { secret } = await api.addCredential(tenant, 'tracker', { type: 'token' })
    const result = await coap(
      ['-m', 'post', '-N', '-t', '0', '-e', 'lat=52.5'],
      `/v1/position?token=${secret!}`,
    )
    expect(result).toMatchObject({ exit: 0, code: '2.04', types: ['NON'] })
    const [record] = await waitForRecords(brokers, ingress, keyed(tenant, 'tracker'))
    expect(record!.payload).toBe('lat=52.5')
    expect(record!.headers).toMatchObject({
      ce_subject: 'position',
      'content-type': 'text/plain;charset=utf-8',
    })
  })

  it('reassembles a block-wise body (coap-client -b, RFC 7959 Block1) into one event', async () => {
    const tenant = await tenantWithDevices(['camera'])
    const body = randomBytes(2_250).toString('base64') // 3,000 ASCII bytes, so kcat shows them as is
    const file = join(files, 'block.txt')
    writeFileSync(file, body)
    const result = await coap(
      ['-m', 'post', ...basic('camera', tenant), '-b', '256', '-t', '0', '-f', file],
      '/v1/snapshot',
    )
    expect(result).toMatchObject({ exit: 0, code: '2.04' })
    // 12 blocks of 256 bytes: eleven 2.31 Continue, then the final 2.04.
    expect(result.codes).toEqual([...Array<string>(11).fill('2.31'), '2.04'])
    const records = await waitForRecords(brokers, ingress, keyed(tenant, 'camera'))
    expect(records).toHaveLength(1)
    expect(records[0]!.payload).toBe(body)
  })

  it('lets a gateway send for a device that lists it (?as=), the gateway named as sender', async () => {
    const tenant = await tenantWithDevices(['gw', ['valve', { gateways: ['gw'] }]])
    const result = await coap(['-m', 'post', ...basic('gw', tenant), '-e', 'open'], '/v1/state?as=valve')
    expect(result).toMatchObject({ exit: 0, code: '2.04' })
    const [record] = await waitForRecords(brokers, ingress, keyed(tenant, 'valve'))
    expect(record!.headers).toMatchObject({ ce_device: 'valve', ce_sender: 'gw' })
  })

  it('answers every bad input with its documented code and a diagnostic, and writes nothing', async () => {
    const tenant = await tenantWithDevices(['meter', ['sleeper', { enabled: false }]])
    const otherPassword = 'the other tenant secret'
    const other = await tenantWithDevices(['meter', 'intruder'], otherPassword)
    const big = join(files, 'big.txt')
    writeFileSync(big, 'x'.repeat(MAX_PAYLOAD + 1))
    const before = await endOffsets()

    const cases: Array<[string, string[], string, string]> = [
      ['no credentials', ['-e', 'x'], '/v1/a', '4.01'],
      ['wrong password', [...basic('meter', tenant, 'not the password'), '-e', 'x'], '/v1/a', '4.01'],
      ['unknown device', [...basic('ghost', tenant), '-e', 'x'], '/v1/a', '4.01'],
      ['malformed option 4209', ['-O', '4209,Basic !!!', '-e', 'x'], '/v1/a', '4.01'],
      ['disabled device', [...basic('sleeper', tenant), '-e', 'x'], '/v1/a', '4.03'],
      // Another tenant's secret for a device of the same name does not open this tenant's device,
      ["another tenant's password", [...basic('meter', tenant, otherPassword), '-e', 'x'], '/v1/a', '4.01'],
      // and another tenant's valid credentials cannot reach this tenant's devices (as= stays in its tenant).
      [
        "another tenant's device",
        [...basic('intruder', other, otherPassword), '-e', 'x'],
        '/v1/a?as=sleeper',
        '4.03',
      ],
      ['not its gateway', [...basic('meter', tenant), '-e', 'x'], '/v1/a?as=sleeper', '4.03'],
      ['oversize (block-wise)', [...basic('meter', tenant), '-b', '1024', '-f', big], '/v1/a', '4.13'],
      ['malformed JSON', [...basic('meter', tenant), '-t', '50', '-e', '{"celsius":'], '/v1/a', '4.00'],
      ['bad channel characters', [...basic('meter', tenant), '-e', 'x'], '/v1/a%20b/c', '4.00'],
      ['too many channel levels', [...basic('meter', tenant), '-e', 'x'], '/v1/1/2/3/4/5/6/7/8/9', '4.00'],
      ['unknown query parameter', [...basic('meter', tenant), '-e', 'x'], '/v1/a?debug=1', '4.00'],
      ['unsupported Content-Format', [...basic('meter', tenant), '-t', '9999', '-e', 'x'], '/v1/a', '4.15'],
      ['not under /v1', [...basic('meter', tenant), '-e', 'x'], '/telemetry', '4.04'],
    ]
    for (const [name, args, path, code] of cases) {
      const result = await coap(['-m', 'post', ...args], path)
      expect(
        result.code,
        `${name}: ${result.stderr
          .split('\n')
          .filter((l) => /^\d\.\d\d /.test(l))
          .join(' | ')}`,
      ).toBe(code)
      // coap-client prints the code and the diagnostic payload of an error response.
      expect(result.stderr, name).toMatch(new RegExp(`^${code.replace('.', '\\.')} \\S`, 'm'))
    }
    const get = await coap(['-m', 'get', ...basic('meter', tenant)], '/v1/a')
    expect(get.code).toBe('4.05')

    // Nothing moved; then a positive control moves the offsets by exactly one record.
    expect(await endOffsets()).toEqual(before)
    const control = await coap(['-m', 'post', ...basic('meter', tenant), '-e', 'control'], '/v1/a')
    expect(control.code).toBe('2.04')
    expect(total(await endOffsets())).toBe(total(before) + 1)
    const mine = (await readTopic(brokers, ingress)).filter(
      (r) => r.headers['ce_tenant'] === tenant || r.headers['ce_tenant'] === other,
    )
    expect(mine.map((r) => r.payload)).toEqual(['control'])
  })

  it('writes the devices it saw as last seen in the registry', async () => {
    const tenant = await tenantWithDevices(['seen-1'])
    expect((await api.request('GET', `/tenants/${tenant}/devices/seen-1`)).body.lastSeen).toBeNull()
    expect((await coap(['-m', 'post', ...basic('seen-1', tenant), '-e', 'hi'], '/v1/a')).code).toBe('2.04')
    let lastSeen: string | null = null
    await waitUntil(async () => {
      lastSeen = (await api.request('GET', `/tenants/${tenant}/devices/seen-1`)).body.lastSeen as
        string | null
      return lastSeen !== null
    })
    expect(Date.parse(lastSeen ?? '')).toBeGreaterThan(Date.now() - 60_000)
  })
})
