// Limits on device file uploads as a running `tributary start` enforces them against curl: the
// tenant's storage quota (bytes and count, set by the admin token) checked when a token is asked for
// and again when the body arrives, a body longer than declared cut off with nothing kept and its
// reservation released, the per-device token rate (429 with Retry-After), and the file metrics the
// management listener serves.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { curl } from '../helpers/curl.ts'
import { startOnKafka, type KafkaTributary } from '../helpers/kafka-process.ts'
import { ADMIN_TOKEN, readTopic } from '../helpers/mqtt.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'

const PASSWORD = 'correct horse battery'
const MAX_FILE = 64 * 1024
const RATE = 20
interface Issued {
  readonly fileId: string
  readonly token: string
  readonly uploadUrl: string
}

describe('device file limits (e2e: curl)', () => {
  let t: KafkaTributary
  let base = ''
  const dataDir = mkdtempSync(join(tmpdir(), 'tributary-e2e-file-limits-'))
  const work = mkdtempSync(join(tmpdir(), 'tributary-e2e-file-limits-body-'))

  beforeAll(async () => {
    t = await startOnKafka('e2e_file_limits', {
      TRIBUTARY_DATA_DIR: dataDir,
      TRIBUTARY_FILES_MAX_BYTES: String(MAX_FILE),
      TRIBUTARY_FILES_DEVICE_RATE: String(RATE),
    })
    base = t.url('http')
  })

  afterAll(async () => {
    const code = await t?.proc.stop('SIGTERM')
    expect(code).toBe(0)
  })

  async function tenantWith(quotas: Record<string, unknown>, devices = ['cam-1']): Promise<string> {
    const tenant = uniqueName('fq')
    await t.api.createTenant(tenant, { quotas })
    for (const device of devices) {
      await t.api.createDevice(tenant, device)
      await t.api.setPassword(tenant, device, PASSWORD)
    }
    return tenant
  }

  const token = (
    tenant: string,
    device: string,
    request: Record<string, unknown>,
  ): Promise<{
    status: number
    headers: Readonly<Record<string, string>>
    json: Issued & Record<string, unknown>
  }> =>
    curl([
      '-u',
      `${device}@${tenant}:${PASSWORD}`,
      '-H',
      'Content-Type: application/json',
      '--data-binary',
      JSON.stringify(request),
      `${base}/v1/files/token`,
    ])

  function upload(url: string, authToken: string, data: Buffer) {
    const path = join(work, uniqueName('body'))
    writeFileSync(path, data)
    return curl(['-H', `x-auth-token: ${authToken}`, '--upload-file', path, url])
  }

  const stored = (tenant: string): number => {
    try {
      return readdirSync(join(dataDir, 'blobs', 'objects', tenant), {
        recursive: true,
        withFileTypes: true,
      }).filter((entry) => entry.isFile()).length
    } catch {
      return 0
    }
  }

  const uploadedEvents = async (tenant: string) =>
    (await readTopic(t.brokers, t.ingress)).filter(
      (r) => r.headers['ce_type'] === 'io.tributary.file.uploaded.v1' && r.headers['ce_tenant'] === tenant,
    )

  it('refuses a token past the storage quota with 409, counting the uploads in progress', async () => {
    const tenant = await tenantWith({ maxFileStorageBytes: 10_000, maxFiles: 3 })
    const first = await token(tenant, 'cam-1', { name: 'a.bin', size: 6_000 })
    expect(first.status).toBe(201)
    // The first upload has not sent its body yet: its 6000 bytes are reserved all the same.
    const over = await token(tenant, 'cam-1', { name: 'b.bin', size: 5_000 })
    expect(over.status).toBe(409)
    expect(over.headers['content-type']).toBe('application/problem+json')
    expect(over.json).toMatchObject({ status: 409, code: 'FILES_QUOTA_EXCEEDED' })
    expect(over.json.detail).toContain('6000 of 10000 bytes')

    expect((await upload(first.json.uploadUrl, first.json.token, randomBytes(6_000))).status).toBe(201)
    const second = await token(tenant, 'cam-1', { name: 'c.bin', size: 4_000 })
    expect(second.status).toBe(201)
    expect((await upload(second.json.uploadUrl, second.json.token, randomBytes(4_000))).status).toBe(201)
    expect((await token(tenant, 'cam-1', { name: 'd.bin', size: 1 })).status).toBe(409)
    // Deleting a file frees its bytes and its place.
    expect(stored(tenant)).toBe(2)
    const del = await curl([
      '-X',
      'DELETE',
      '-H',
      `Authorization: Bearer ${ADMIN_TOKEN}`,
      `${t.url('api')}/api/v1/tenants/${tenant}/files/${second.json.fileId}`,
    ])
    expect(del.status).toBe(204)
    expect((await token(tenant, 'cam-1', { name: 'e.bin', size: 4_000 })).status).toBe(201)
  })

  it('counts files as well as bytes', async () => {
    const tenant = await tenantWith({ maxFiles: 2 })
    expect((await token(tenant, 'cam-1', { name: 'one', size: 0 })).status).toBe(201)
    expect((await token(tenant, 'cam-1', { name: 'two', size: 0 })).status).toBe(201)
    const third = await token(tenant, 'cam-1', { name: 'three', size: 0 })
    expect(third.status).toBe(409)
    expect(third.json.detail).toContain('2 of its 2 files')
  })

  it('refuses the body of a token issued before the admin lowered the quota, keeping nothing', async () => {
    const tenant = await tenantWith({ maxFileStorageBytes: 10_000 }, ['cam-1', 'probe'])
    const issued = await token(tenant, 'cam-1', { name: 'late.bin', size: 5_000 })
    expect(issued.status).toBe(201)
    await t.api.patchTenant(tenant, { quotas: { maxFileStorageBytes: 4_000 } })
    // Every process reads the new quota once the registry change reached it.
    await waitUntil(async () => (await token(tenant, 'probe', { name: 'p', size: 1 })).status === 409)
    const refused = await upload(issued.json.uploadUrl, issued.json.token, randomBytes(5_000))
    expect(refused.status).toBe(409)
    expect(refused.headers['connection']).toBe('close')
    expect(refused.json).toMatchObject({ code: 'FILES_QUOTA_EXCEEDED' })
    expect(stored(tenant)).toBe(0)
    // The refused upload gave its reservation back: a file that fits the new quota is taken.
    const fits = await token(tenant, 'cam-1', { name: 'fits.bin', size: 4_000 })
    expect(fits.status).toBe(201)
    expect((await upload(fits.json.uploadUrl, fits.json.token, randomBytes(4_000))).status).toBe(201)
    expect(stored(tenant)).toBe(1)
    const names = (await uploadedEvents(tenant)).map((r) => (JSON.parse(r.payload!) as { name: string }).name)
    expect(names).toEqual(['fits.bin'])
  })

  it('cuts a body longer than declared, keeps nothing and releases its reservation', async () => {
    const tenant = await tenantWith({ maxFileStorageBytes: 2_000 })
    const small = await token(tenant, 'cam-1', { name: 'small.bin', size: 1_000 })
    expect(small.status).toBe(201)
    const cut = await upload(small.json.uploadUrl, small.json.token, randomBytes(30_000))
    expect(cut.status).toBe(400)
    expect(cut.json).toMatchObject({ code: 'REQUEST_INVALID' })
    expect(cut.headers['connection']).toBe('close')
    expect(stored(tenant)).toBe(0)
    // Past the process's largest file: refused from Content-Length before anything is read.
    const huge = await token(tenant, 'cam-1', { name: 'huge.bin', size: 500 })
    const tooLarge = await upload(huge.json.uploadUrl, huge.json.token, randomBytes(MAX_FILE + 1))
    expect(tooLarge.status).toBe(413)
    expect(stored(tenant)).toBe(0)
    expect(await uploadedEvents(tenant)).toEqual([])
    // The cut body gave its 1000 bytes back; the token refused from its Content-Length was not
    // spent, so its 500 stay reserved until it is used or lapses.
    expect((await token(tenant, 'cam-1', { name: 'more.bin', size: 1_501 })).status).toBe(409)
    expect((await token(tenant, 'cam-1', { name: 'rest.bin', size: 1_500 })).status).toBe(201)
  })

  it('refuses a device past its token rate with 429 and Retry-After, other devices unaffected', async () => {
    const tenant = await tenantWith({}, ['cam-1', 'cam-2'])
    // The bucket holds RATE tokens and refills at RATE per minute: the first RATE pass, and
    // within a few more (what refilled meanwhile) one is refused.
    const statuses: number[] = []
    let limited = await token(tenant, 'cam-1', { name: 'r', size: 1 })
    while (limited.status === 201 && statuses.length < 2 * RATE) {
      statuses.push(limited.status)
      limited = await token(tenant, 'cam-1', { name: 'r', size: 1 })
    }
    expect(statuses.length).toBeGreaterThanOrEqual(RATE)
    expect(limited.status).toBe(429)
    expect(limited.json).toMatchObject({ code: 'RATE_LIMITED' })
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1)
    expect((await token(tenant, 'cam-2', { name: 'other', size: 1 })).status).toBe(201)
  })

  it('counts uploads, bytes and refusals by reason per tenant and device in /metrics', async () => {
    const tenant = await tenantWith({ maxFileStorageBytes: 100 })
    const issued = await token(tenant, 'cam-1', { name: 'm.bin', size: 100 })
    expect((await upload(issued.json.uploadUrl, issued.json.token, randomBytes(100))).status).toBe(201)
    expect((await token(tenant, 'cam-1', { name: 'n.bin', size: 1 })).status).toBe(409)
    const metrics = (await curl([`${t.url('management')}/metrics`])).body
    expect(metrics).toContain(`tributary_file_uploads_total{tenant="${tenant}"} 1`)
    expect(metrics).toContain(`tributary_file_upload_bytes_total{tenant="${tenant}"} 100`)
    expect(metrics).toContain(`tributary_file_tokens_total{tenant="${tenant}"} 1`)
    expect(metrics).toContain(`tributary_file_refusals_total{tenant="${tenant}",reason="quota"} 1`)
    expect(metrics).toContain(`tributary_file_device_uploads_total{tenant="${tenant}",device="cam-1"} 1`)
    expect(metrics).toContain(
      `tributary_file_device_refusals_total{tenant="${tenant}",device="cam-1",reason="quota"} 1`,
    )
    expect(metrics).toMatch(/tributary_file_refusals_total\{tenant="[^"]+",reason="rate"\} 1/)
  })
})
