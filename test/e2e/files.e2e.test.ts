// Device file uploads (Kaa BCX) as devices and data engineers meet them: a running `tributary start`
// on Kafka, once with the embedded blob store and once with S3 (S3Proxy); curl asks for a token and
// sends the file with `--upload-file`; kcat reads the io.tributary.file.uploaded.v1 event from the
// tenant topic, and its dataref leads to exactly the bytes sent. Refused uploads store nothing.
import { ListObjectsV2Command } from '@aws-sdk/client-s3'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { curl } from '../helpers/curl.ts'
import { startOnKafka, type KafkaTributary } from '../helpers/kafka-process.ts'
import { ADMIN_TOKEN, readTopic, waitForRecords } from '../helpers/mqtt.ts'
import { runCli } from '../helpers/process.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'
import { testBucket } from '../setup/s3-env.ts'

const PASSWORD = 'correct horse battery'
const MAX_FILE = 64 * 1024
interface Issued {
  readonly fileId: string
  readonly token: string
  readonly expiresAt: string
  readonly uploadUrl: string
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex')

interface Backend {
  readonly name: string
  /** Environment of the process, and how to read back what the blob store holds. */
  setup(): Promise<{
    env: Record<string, string>
    count(tenant: string): Promise<number>
  }>
}

const filesystem: Backend = {
  name: 'filesystem',
  async setup() {
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-e2e-files-'))
    return {
      env: { TRIBUTARY_DATA_DIR: dataDir },
      count: async (tenant) => {
        try {
          return readdirSync(join(dataDir, 'blobs', 'objects', tenant), {
            recursive: true,
            withFileTypes: true,
          }).filter((entry) => entry.isFile()).length
        } catch {
          return 0
        }
      },
    }
  },
}

const s3: Backend = {
  name: 's3',
  async setup() {
    const { bucket, client, env } = await testBucket()
    return {
      env,
      count: async (tenant) =>
        (await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${tenant}/` }))).KeyCount ?? 0,
    }
  },
}

describe.each([filesystem, s3])(
  'device file uploads over HTTP (e2e: curl, kcat) on the $name blob store',
  (backend) => {
    let t: KafkaTributary
    let store: Awaited<ReturnType<Backend['setup']>>
    let base = ''
    let tenant = ''
    const work = mkdtempSync(join(tmpdir(), 'tributary-e2e-upload-'))

    beforeAll(async () => {
      store = await backend.setup()
      t = await startOnKafka('e2e_files', { ...store.env, TRIBUTARY_FILES_MAX_BYTES: String(MAX_FILE) })
      base = t.url('http')
      tenant = uniqueName('fl')
      await t.api.createTenant(tenant)
      for (const device of ['cam-1', 'cam-2']) {
        await t.api.createDevice(tenant, device)
        await t.api.setPassword(tenant, device, PASSWORD)
      }
    })

    afterAll(async () => {
      const code = await t?.proc.stop('SIGTERM')
      expect(code).toBe(0)
    })

    async function token(
      device: string,
      request: Record<string, unknown>,
    ): Promise<{ status: number; json: Issued }> {
      return curl([
        '-u',
        `${device}@${tenant}:${PASSWORD}`,
        '-H',
        'Content-Type: application/json',
        '--data-binary',
        JSON.stringify(request),
        `${base}/v1/files/token`,
      ])
    }

    /** Downloads a dataref (a URI reference to the management API) with curl and a reader's rights. */
    async function readDataref(dataref: string): Promise<Buffer> {
      const saved = join(work, uniqueName('download'))
      const download = await curl([
        '-H',
        `Authorization: Bearer ${ADMIN_TOKEN}`,
        '-o',
        saved,
        new URL(dataref, t.url('api')).href,
      ])
      expect(download.status).toBe(200)
      return readFileSync(saved)
    }

    function fileOf(data: Buffer): string {
      const path = join(work, uniqueName('body'))
      writeFileSync(path, data)
      return path
    }

    const upload = (url: string, authToken: string | undefined, path: string) =>
      curl([
        ...(authToken === undefined ? [] : ['-H', `x-auth-token: ${authToken}`]),
        '--upload-file',
        path,
        url,
      ])

    it('takes a file sent with curl --upload-file and announces it on the tenant topic with a dataref to its bytes', async () => {
      const data = randomBytes(20_000)
      const issued = await token('cam-1', {
        name: 'snapshots/front door.jpg',
        size: data.length,
        sha256: sha256(data),
        contentType: 'image/jpeg',
      })
      expect(issued.status).toBe(201)
      expect(issued.json).toMatchObject({ fileId: expect.any(String), token: expect.any(String) })
      expect(issued.json.uploadUrl).toBe(`${base}/v1/files/${issued.json.fileId}`)
      expect(Date.parse(issued.json.expiresAt)).toBeGreaterThan(Date.now())

      const reply = await upload(issued.json.uploadUrl, issued.json.token, fileOf(data))
      expect(reply.status).toBe(201)
      expect(reply.json).toMatchObject({
        id: issued.json.fileId,
        name: 'snapshots/front door.jpg',
        size: data.length,
        sha256: sha256(data),
        contentType: 'image/jpeg',
      })

      const [record] = await waitForRecords(
        t.brokers,
        `${t.prefix}.events.${tenant}`,
        (r) => r.headers['ce_type'] === 'io.tributary.file.uploaded.v1',
      )
      expect(record!.key).toBe(`${tenant}/cam-1`)
      expect(record!.headers).toMatchObject({
        ce_source: `tributary://${tenant}/cam-1`,
        ce_subject: 'files',
        ce_tenant: tenant,
        ce_device: 'cam-1',
        ce_protocol: 'http',
        'content-type': 'application/json',
      })
      expect(JSON.parse(record!.payload!)).toEqual({
        id: issued.json.fileId,
        name: 'snapshots/front door.jpg',
        size: data.length,
        sha256: sha256(data),
        contentType: 'image/jpeg',
      })
      // The claim check names the content in the management API: an application reads it there.
      const dataref = record!.headers['ce_dataref']!
      expect(dataref).toBe(`/api/v1/tenants/${tenant}/files/${issued.json.fileId}/content`)
      expect((await readDataref(dataref)).equals(data)).toBe(true)
    })

    it('refuses a spent token, a token used on another upload, and no token, storing nothing', async () => {
      const data = Buffer.from('once only')
      const first = (await token('cam-1', { name: 'a.txt', size: data.length })).json
      const other = (await token('cam-2', { name: 'b.txt', size: data.length })).json
      const before = await store.count(tenant)

      // cam-2's token on cam-1's upload URL: refused, and cam-2's token is still good for its own.
      expect((await upload(first.uploadUrl, other.token, fileOf(data))).status).toBe(401)
      expect((await upload(first.uploadUrl, undefined, fileOf(data))).status).toBe(401)
      expect(await store.count(tenant)).toBe(before)

      expect((await upload(first.uploadUrl, first.token, fileOf(data))).status).toBe(201)
      const reused = await upload(first.uploadUrl, first.token, fileOf(data))
      expect(reused.status).toBe(401)
      expect(reused.json).toMatchObject({ code: 'AUTH_REQUIRED' })
      expect((await upload(other.uploadUrl, other.token, fileOf(data))).status).toBe(201)
      expect(await store.count(tenant)).toBe(before + 2)
    })

    it('refuses bodies that differ from their declaration or pass the limit, keeping nothing and announcing nothing', async () => {
      const before = await store.count(tenant)
      const data = randomBytes(5_000)

      const longer = (await token('cam-1', { name: 'long.bin', size: data.length - 100 })).json
      expect((await upload(longer.uploadUrl, longer.token, fileOf(data))).status).toBe(400)

      const mismatch = (
        await token('cam-1', { name: 'hash.bin', size: data.length, sha256: sha256(Buffer.from('x')) })
      ).json
      const refused = await upload(mismatch.uploadUrl, mismatch.token, fileOf(data))
      expect(refused.status).toBe(400)
      expect(refused.json).toMatchObject({ code: 'REQUEST_INVALID' })

      expect((await token('cam-1', { name: 'huge.bin', size: MAX_FILE + 1 })).status).toBe(413)
      const small = (await token('cam-1', { name: 'small.bin', size: 10 })).json
      const huge = await upload(small.uploadUrl, small.token, fileOf(randomBytes(MAX_FILE + 1)))
      expect(huge.status).toBe(413)

      expect(await store.count(tenant)).toBe(before)
      const events = (await readTopic(t.brokers, t.ingress)).filter(
        (r) => r.headers['ce_type'] === 'io.tributary.file.uploaded.v1' && r.key === `${tenant}/cam-1`,
      )
      const names = events.map((r) => (JSON.parse(r.payload!) as { name: string }).name)
      expect(names).not.toContain('long.bin')
      expect(names).not.toContain('hash.bin')
      expect(names).not.toContain('small.bin')
    })

    it('hands out presigned PUTs where the store can sign them, and records them only once HEAD agrees', async () => {
      const data = randomBytes(4_000)
      const declared = { name: 'direct.bin', size: data.length, sha256: sha256(data) }
      const before = await store.count(tenant)
      const presign = (request: Record<string, unknown>) =>
        curl([
          '-u',
          `cam-1@${tenant}:${PASSWORD}`,
          '-H',
          'Content-Type: application/json',
          '--data-binary',
          JSON.stringify(request),
          `${base}/v1/files/presign`,
        ])
      const complete = (url: string, authToken: string) =>
        curl(['-X', 'POST', '-H', `x-auth-token: ${authToken}`, url])
      if (backend.name === 'filesystem') {
        const refused = await presign(declared)
        expect(refused.status).toBe(400)
        expect(refused.json.detail).toMatch(/cannot presign/)
        expect(await store.count(tenant)).toBe(before)
        return
      }
      interface Presigned {
        fileId: string
        token: string
        completeUrl: string
        upload: { method: string; url: string; headers: Record<string, string> }
      }
      const checksumHeader = (p: Presigned) => [
        '-H',
        `x-amz-checksum-sha256: ${p.upload.headers['x-amz-checksum-sha256']}`,
      ]

      // The bound checksum: another body of the same length is refused by the store itself.
      const cheat = (await presign(declared)).json as Presigned
      const other = await curl([
        ...checksumHeader(cheat),
        '--upload-file',
        fileOf(randomBytes(data.length)),
        cheat.upload.url,
      ])
      expect(other.status).toBeGreaterThanOrEqual(400)
      const unproven = await complete(cheat.completeUrl, cheat.token)
      expect(unproven.status).toBe(400)
      expect(await store.count(tenant)).toBe(before)

      const good = (await presign({ ...declared, contentType: 'application/octet-stream' })).json as Presigned
      expect(good.upload.method).toBe('PUT')
      const put = await curl([...checksumHeader(good), '--upload-file', fileOf(data), good.upload.url])
      expect(put.status).toBe(200)
      const done = await complete(good.completeUrl, good.token)
      expect(done.status).toBe(201)
      expect(done.json).toMatchObject({ id: good.fileId, size: data.length, sha256: sha256(data) })
      expect((await complete(good.completeUrl, good.token)).status).toBe(401)

      const [record] = await waitForRecords(
        t.brokers,
        `${t.prefix}.events.${tenant}`,
        (r) => r.headers['ce_type'] === 'io.tributary.file.uploaded.v1' && r.payload!.includes(good.fileId),
      )
      expect((await readDataref(record!.headers['ce_dataref']!)).equals(data)).toBe(true)
      expect(await store.count(tenant)).toBe(before + 1)
    })

    it('hands out download URLs that open one file for GET until they expire, and nothing else', async () => {
      const data = randomBytes(6_000)
      const issued = (await token('cam-2', { name: 'fw/app 1.bin', size: data.length })).json
      expect((await upload(issued.uploadUrl, issued.token, fileOf(data))).status).toBe(201)
      const other = (await token('cam-1', { name: 'other.bin', size: 5 })).json
      expect((await upload(other.uploadUrl, other.token, fileOf(Buffer.from('other')))).status).toBe(201)
      const urlOf = async (id: string, query = '') => {
        const reply = await curl([
          '-H',
          `Authorization: Bearer ${ADMIN_TOKEN}`,
          `${t.url('api')}/api/v1/tenants/${tenant}/files/${id}/url${query}`,
        ])
        expect(reply.status).toBe(200)
        return reply.json as { url: string; method: string; expiresAt: string }
      }
      const link = await urlOf(issued.fileId)
      expect(link.method).toBe('GET')
      if (backend.name === 'filesystem') {
        expect(link.url.startsWith(`${base}/v1/files/download/${tenant}/cam-2/${issued.fileId}?`)).toBe(true)
      } else {
        expect(link.url).toContain('X-Amz-Signature=')
      }
      const saved = join(work, uniqueName('by-url'))
      const got = await curl(['-o', saved, link.url])
      expect(got.status).toBe(200)
      expect(readFileSync(saved).equals(data)).toBe(true)
      if (backend.name === 'filesystem') {
        expect(got.headers['content-disposition']).toBe("attachment; filename*=UTF-8''fw%2Fapp%201.bin")
      }

      // The same query on another object (another device's file, another tenant's key): refused.
      const url = new URL(link.url)
      const otherKey = new URL(url)
      otherKey.pathname = url.pathname.replace(issued.fileId, other.fileId).replace('/cam-2/', '/cam-1/')
      const otherTenant = new URL(url)
      otherTenant.pathname = url.pathname.replace(`/${tenant}/`, '/intruder/')
      const signature = backend.name === 'filesystem' ? 'signature' : 'X-Amz-Signature'
      const forged = new URL(url)
      const sig = forged.searchParams.get(signature)!
      forged.searchParams.set(
        signature,
        `${sig.startsWith('0') || sig.startsWith('A') ? 'B' : 'A'}${sig.slice(1)}`,
      )
      for (const [label, attempt] of [
        ['another key', otherKey.href],
        ['another tenant', otherTenant.href],
        ['a forged signature', forged.href],
      ] as const) {
        const refused = await curl([attempt])
        expect(refused.status, label).toBe(403)
        expect(refused.body, label).not.toContain('other')
      }
      // Another method: the URL is for GET only, and nothing is written through it.
      const put = await curl(['--upload-file', fileOf(Buffer.from('overwrite')), link.url])
      expect(put.status).toBeGreaterThanOrEqual(400)
      expect(put.status).toBeLessThan(500)
      const again = join(work, uniqueName('by-url'))
      expect((await curl(['-o', again, link.url])).status).toBe(200)
      expect(readFileSync(again).equals(data)).toBe(true)

      // An expired URL is refused (the store or Tributary reads the expiry signed into it).
      const short = await urlOf(issued.fileId, '?expiresIn=1')
      await new Promise((resolve) => setTimeout(resolve, Date.parse(short.expiresAt) - Date.now() + 1_100))
      expect((await curl([short.url])).status).toBe(403)
    })

    it('lists, downloads and deletes files with the tributary CLI', async () => {
      const data = randomBytes(3_000)
      const issued = (await token('cam-2', { name: 'cli/report.csv', size: data.length })).json
      expect((await upload(issued.uploadUrl, issued.token, fileOf(data))).status).toBe(201)
      const cli = (...args: string[]) =>
        runCli(['files', ...args, '--tenant', tenant], {
          TRIBUTARY_API_URL: t.url('api'),
          TRIBUTARY_API_TOKEN: ADMIN_TOKEN,
        })
      const listed = JSON.parse(await cli('list', '--name-prefix', 'cli/', '--json')) as Array<{ id: string }>
      expect(listed.map((f) => f.id)).toEqual([issued.fileId])
      expect(await cli('get', issued.fileId)).toContain('cli/report.csv')
      const saved = join(work, uniqueName('cli-download'))
      await cli('download', issued.fileId, '--output', saved)
      expect(readFileSync(saved).equals(data)).toBe(true)
      const link = JSON.parse(await cli('url', issued.fileId, '--expires-in', '60', '--json')) as {
        url: string
      }
      const byUrl = join(work, uniqueName('cli-url'))
      expect((await curl(['-o', byUrl, link.url])).status).toBe(200)
      expect(readFileSync(byUrl).equals(data)).toBe(true)
      await cli('delete', issued.fileId)
      expect(JSON.parse(await cli('list', '--name-prefix', 'cli/', '--json'))).toEqual([])
    })

    it("removes a deleted device's files from the blob store, and only its files", async () => {
      await t.api.createDevice(tenant, 'cam-gone')
      await t.api.setPassword(tenant, 'cam-gone', PASSWORD)
      const data = randomBytes(1_000)
      for (const name of ['a.bin', 'b.bin']) {
        const issued = (await token('cam-gone', { name, size: data.length })).json
        expect((await upload(issued.uploadUrl, issued.token, fileOf(data))).status).toBe(201)
      }
      const before = await store.count(tenant)
      const deleted = await t.api.request('DELETE', `/tenants/${tenant}/devices/cam-gone`)
      expect(deleted.status).toBe(204)
      // The blob sweeper of the process deletes both objects (it looks every 10 seconds).
      await waitUntil(async () => (await store.count(tenant)) === before - 2, { timeoutMs: 30_000 })
      const listed = await t.api.request('GET', `/tenants/${tenant}/files?device=cam-2`)
      const remaining = (listed.body.items as unknown[]).length
      expect(remaining).toBeGreaterThan(0)
      expect(await store.count(tenant)).toBeGreaterThanOrEqual(remaining)
    })

    it('keeps the files channel reserved for telemetry', async () => {
      const reply = await curl([
        '-u',
        `cam-1@${tenant}:${PASSWORD}`,
        '--data-binary',
        '{}',
        `${base}/v1/files/anything`,
      ])
      expect(reply.status).toBe(403)
    })
  },
)
