// Upload tokens over CoAP as devices meet them: a running `tributary start` on Kafka; coap-client
// asks `POST /v1/files/token` with the device's option 4209 credentials (or `?token=`) and gets the
// answer HTTP gives, then curl sends the body to the device HTTP listener; refusals come back as
// CoAP codes (4.00, 4.01, 4.09 over the quota, 4.15) and issue nothing.
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { coapBasic, coapClient, type CoapResult } from '../helpers/coap.ts'
import { curl } from '../helpers/curl.ts'
import { startOnKafka, type KafkaTributary } from '../helpers/kafka-process.ts'
import { waitForRecords } from '../helpers/mqtt.ts'
import { uniqueName } from '../helpers/wait.ts'

const PASSWORD = 'correct horse battery'

interface Issued {
  readonly fileId: string
  readonly token: string
  readonly expiresAt: string
  readonly uploadUrl: string
}

describe('upload tokens over CoAP (e2e: coap-client, curl, kcat)', () => {
  let t: KafkaTributary
  let tenant = ''
  const dataDir = mkdtempSync(join(tmpdir(), 'tributary-e2e-files-coap-'))

  beforeAll(async () => {
    t = await startOnKafka('e2e_files_coap', { TRIBUTARY_DATA_DIR: dataDir })
    tenant = uniqueName('fc')
    await t.api.createTenant(tenant)
    await t.api.createDevice(tenant, 'cam-1')
    await t.api.setPassword(tenant, 'cam-1', PASSWORD)
  })

  afterAll(async () => {
    const code = await t?.proc.stop('SIGTERM')
    expect(code).toBe(0)
  })

  const ask = (args: readonly string[], body: string, path = '/v1/files/token'): Promise<CoapResult> =>
    coapClient(t.ports['coap']!, ['-m', 'post', ...args, '-t', '50', '-e', body], path)

  const issuedOf = (result: CoapResult): Issued => {
    const body = /\{"fileId".*\}/.exec(result.stdout)
    expect(body, result.stdout).not.toBeNull()
    return JSON.parse(body![0]) as Issued
  }

  const stored = (of: string): number => {
    try {
      return readdirSync(join(dataDir, 'blobs', 'objects', of), {
        recursive: true,
        withFileTypes: true,
      }).filter((entry) => entry.isFile()).length
    } catch {
      return 0
    }
  }

  it('answers 2.01 with the token HTTP gives, and the body sent with curl is announced', async () => {
    const data = randomBytes(3_000)
    const sha256 = createHash('sha256').update(data).digest('hex')
    const result = await ask(
      coapBasic('cam-1', tenant, PASSWORD),
      JSON.stringify({ name: 'boot.log', size: data.length, sha256, contentType: 'text/plain' }),
    )
    expect(result.code, result.stderr).toBe('2.01')
    const issued = issuedOf(result)
    expect(issued.uploadUrl).toBe(`${t.url('http')}/v1/files/${issued.fileId}`)
    expect(Date.parse(issued.expiresAt)).toBeGreaterThan(Date.now())

    const path = join(dataDir, 'body.bin')
    writeFileSync(path, data)
    const put = await curl(['-H', `x-auth-token: ${issued.token}`, '--upload-file', path, issued.uploadUrl])
    expect(put.status).toBe(201)
    expect(put.json).toMatchObject({ id: issued.fileId, name: 'boot.log', size: data.length, sha256 })
    const [record] = await waitForRecords(
      t.brokers,
      `${t.prefix}.events.${tenant}`,
      (r) => r.headers['ce_type'] === 'io.tributary.file.uploaded.v1',
    )
    expect(JSON.parse(record!.payload!)).toMatchObject({ id: issued.fileId, name: 'boot.log' })
    expect(stored(tenant)).toBe(1)
  })

  it('takes a device token in ?token= as the other CoAP routes do', async () => {
    const { secret: deviceToken } = await t.api.addCredential(tenant, 'cam-1', { type: 'token' })
    const result = await ask(
      [],
      JSON.stringify({ name: 't.bin', size: 1 }),
      `/v1/files/token?token=${deviceToken}`,
    )
    expect(result.code, result.stderr).toBe('2.01')
    expect(issuedOf(result).fileId).toMatch(/^[A-Za-z0-9_-]+$/)
  })

  it('refuses bad requests with CoAP codes, issuing nothing', async () => {
    const login = coapBasic('cam-1', tenant, PASSWORD)
    const limited = uniqueName('fq')
    await t.api.createTenant(limited, { quotas: { maxFileStorageBytes: 10 } })
    await t.api.createDevice(limited, 'cam-1')
    await t.api.setPassword(limited, 'cam-1', PASSWORD)
    const cases: Array<[string, readonly string[], string, string]> = [
      ['no credentials', [], '{"name":"a","size":1}', '4.01'],
      ['wrong password', coapBasic('cam-1', tenant, 'nope'), '{"name":"a","size":1}', '4.01'],
      ['no name', login, '{"size":1}', '4.00'],
      ['not JSON', login, 'name=a', '4.00'],
      ['a bad sha256', login, '{"name":"a","size":1,"sha256":"xyz"}', '4.00'],
      ['over the quota', coapBasic('cam-1', limited, PASSWORD), '{"name":"a","size":11}', '4.09'],
    ]
    for (const [what, args, body, code] of cases) {
      const result = await ask(args, body)
      expect(result.code, `${what}: ${result.stderr}`).toBe(code)
      expect(result.stdout, what).not.toContain('"token"')
    }
    const wrongFormat = await coapClient(
      t.ports['coap']!,
      ['-m', 'post', ...login, '-t', '0', '-e', '{"name":"a","size":1}'],
      '/v1/files/token',
    )
    expect(wrongFormat.code).toBe('4.15')
  })
})
