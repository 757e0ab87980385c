// Presigned S3 PUTs asked for over MQTT (docs/files.md) against a running `tributary start` on Kafka
// with the S3 store (S3Proxy): an MQTT.js device subscribes to files/presign/res/+ and asks on
// files/presign/req/<id> (one connection: the adapter speaks MQTT 3.1.1, so mosquitto_rr cannot, and
// a second connection of the device would take its session over), curl PUTs the body straight to
// S3Proxy with the signed headers, and the completion records it. A body other than declared is
// refused by the store itself, and a refused declaration is answered {statusCode, reasonPhrase}.
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { curl } from '../helpers/curl.ts'
import { startOnKafka, type KafkaTributary } from '../helpers/kafka-process.ts'
import { waitForRecords } from '../helpers/mqtt.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'
import { testBucket } from '../setup/s3-env.ts'

const PASSWORD = 'correct horse battery'
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex')

interface Presigned {
  readonly fileId: string
  readonly token: string
  readonly expiresAt: string
  readonly upload: { method: string; url: string; headers: Record<string, string> }
  readonly completeUrl: string
}

describe('presigned S3 PUTs over MQTT (e2e: MQTT.js, curl, S3Proxy, kcat)', () => {
  let t: KafkaTributary
  let tenant = ''
  let s3: S3Client
  let bucket = ''
  const work = mkdtempSync(join(tmpdir(), 'tributary-e2e-mqtt-presign-'))

  beforeAll(async () => {
    const made = await testBucket()
    s3 = made.client
    bucket = made.bucket
    t = await startOnKafka('e2e_mqttpresign', made.env)
    tenant = uniqueName('mp')
    await t.api.createTenant(tenant, { quotas: { maxFileStorageBytes: 10_000 } })
    await t.api.createDevice(tenant, 'cam-1')
    await t.api.setPassword(tenant, 'cam-1', PASSWORD)
  })

  afterAll(async () => {
    const code = await t?.proc.stop('SIGTERM')
    expect(code).toBe(0)
  })

  const objects = async (): Promise<number> =>
    (await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${tenant}/` }))).KeyCount ?? 0

  function put(presigned: Presigned, data: Buffer) {
    const path = join(work, uniqueName('body'))
    writeFileSync(path, data)
    return curl([
      '-H',
      `x-amz-checksum-sha256: ${presigned.upload.headers['x-amz-checksum-sha256']}`,
      '--upload-file',
      path,
      presigned.upload.url,
    ])
  }

  it('answers files/presign/req/<id> with a PUT that S3 takes, recorded by the completion', async () => {
    const client = await mqtt.connectAsync(
      `mqtt://127.0.0.1:${t.ports['mqtt']}`,
      { protocolVersion: 4, reconnectPeriod: 0, username: `cam-1@${tenant}`, password: PASSWORD },
      false,
    )
    const inbox = new Map<string, Record<string, unknown>>()
    client.on('message', (topic, payload) =>
      inbox.set(topic, JSON.parse(payload.toString()) as Record<string, unknown>),
    )
    const ask = async (id: string, request: Record<string, unknown>) => {
      await client.publishAsync(`files/presign/req/${id}`, JSON.stringify(request), { qos: 1 })
      const topic = `files/presign/res/${id}`
      await waitUntil(() => inbox.has(topic), { message: () => `an answer on ${topic}` })
      return inbox.get(topic)!
    }
    try {
      expect((await client.subscribeAsync('files/presign/res/+', { qos: 1 }))[0]?.qos).toBe(1)
      const data = randomBytes(4_000)
      const presigned = (await ask('p1', {
        name: 'dump.bin',
        size: data.length,
        sha256: sha256(data),
      })) as unknown as Presigned
      expect(Object.keys(presigned).sort()).toEqual(['completeUrl', 'expiresAt', 'fileId', 'token', 'upload'])
      expect(presigned.upload.method).toBe('PUT')
      expect(presigned.completeUrl).toBe(`${t.url('http')}/v1/files/${presigned.fileId}/complete`)

      // Another body of the declared length: the store refuses it (the checksum is signed).
      const cheat = (await ask('p2', {
        name: 'cheat.bin',
        size: data.length,
        sha256: sha256(data),
      })) as unknown as Presigned
      expect((await put(cheat, randomBytes(data.length))).status).toBeGreaterThanOrEqual(400)
      expect(await objects()).toBe(0)

      expect((await put(presigned, data)).status).toBe(200)
      const done = await curl(['-X', 'POST', '-H', `x-auth-token: ${presigned.token}`, presigned.completeUrl])
      expect(done.status).toBe(201)
      expect(done.json).toMatchObject({ id: presigned.fileId, size: data.length, sha256: sha256(data) })
      const [record] = await waitForRecords(
        t.brokers,
        `${t.prefix}.events.${tenant}`,
        (r) => r.headers['ce_type'] === 'io.tributary.file.uploaded.v1',
      )
      expect(JSON.parse(record!.payload!)).toMatchObject({ id: presigned.fileId, name: 'dump.bin' })
      expect(record!.headers['ce_dataref']).toBe(
        `/api/v1/tenants/${tenant}/files/${presigned.fileId}/content`,
      )

      // Refused declarations: no sha256 (a presigned PUT is bound to one), past the tenant's quota.
      expect(await ask('p3', { name: 'x', size: 10 })).toMatchObject({ statusCode: 400 })
      expect(await ask('p4', { name: 'x', size: 9_000, sha256: sha256(data) })).toMatchObject({
        statusCode: 409,
      })
      expect(await objects()).toBe(1)
    } finally {
      await client.endAsync(true)
    }
  })
})
