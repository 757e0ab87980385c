// Crash safety of device file uploads with a real process and SIGKILL: the test owns a Kafka broker
// behind a TCP proxy and cuts it, so that an upload that completes is recorded with its event in the
// registry's outbox but cannot be published yet; a second upload is streaming (curl, rate-limited)
// when the process is killed. After a restart on the same data dir, with the broker back: the
// completed upload's file.uploaded event is published, the interrupted one is neither listed nor
// announced, and nothing of it is left in the blob store.
import type { ChildProcess } from 'node:child_process'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { curl } from '../helpers/curl.ts'
import type { KafkaBehindProxy } from '../helpers/kafka-outage.ts'
import { startKafkaBehindProxy } from '../helpers/kafka-outage.ts'
import { ADMIN_TOKEN, createApi, readTopic, waitForRecords } from '../helpers/mqtt.ts'
import type { TributaryProcess } from '../helpers/process.ts'
import { startProcess } from '../helpers/process.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'

const PASSWORD = 'correct horse battery'
const FILE_UPLOADED = 'io.tributary.file.uploaded.v1'

let kafka: KafkaBehindProxy
let proc: TributaryProcess | undefined
let slowUpload: ChildProcess | undefined
const dataDir = mkdtempSync(join(tmpdir(), 'tributary-e2e-files-crash-'))
const work = mkdtempSync(join(tmpdir(), 'tributary-e2e-files-crash-body-'))
const prefix = uniqueName('e2e_fcrash').replaceAll('-', '_')
const tenant = uniqueName('fc')

async function start(): Promise<{ proc: TributaryProcess; url: (listener: string) => string }> {
  const started = startProcess(['start'], {
    TRIBUTARY_DATA_DIR: dataDir,
    TRIBUTARY_ADMIN_TOKEN: ADMIN_TOKEN,
    TRIBUTARY_KAFKA_BROKERS: kafka.brokers,
    TRIBUTARY_TOPIC_PREFIX: prefix,
    TRIBUTARY_TOPIC_PARTITIONS: '1',
  })
  proc = started
  const line = await started.waitForLog((l) => l.msg === 'tributary started')
  const ports = line['ports'] as Record<string, number>
  return { proc: started, url: (listener) => `http://127.0.0.1:${ports[listener]}` }
}

const objectsOf = (): string[] => {
  try {
    return readdirSync(join(dataDir, 'blobs', 'objects', tenant), { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => entry.name)
  } catch {
    return []
  }
}
const tempFiles = (): Array<{ name: string; size: number }> =>
  readdirSync(join(dataDir, 'blobs', 'tmp')).map((name) => ({
    name,
    size: statSync(join(dataDir, 'blobs', 'tmp', name)).size,
  }))

beforeAll(async () => {
  kafka = await startKafkaBehindProxy()
})

afterAll(async () => {
  slowUpload?.kill('SIGKILL')
  await kafka?.proxy.restore()
  if (proc !== undefined && proc.child.exitCode === null && proc.child.signalCode === null) {
    expect(await proc.stop('SIGTERM')).toBe(0)
  }
  await kafka?.stop()
})

describe('device file uploads when the process is killed (e2e: SIGKILL, curl, kcat)', () => {
  it('publishes a recorded upload after a restart, and leaves no trace of one cut off mid-body', async () => {
    const first = await start()
    const api = createApi(first.url('api'))
    await api.createTenant(tenant)
    await api.createDevice(tenant, 'cam-1')
    await api.setPassword(tenant, 'cam-1', PASSWORD)
    const token = async (name: string, size: number) => {
      const reply = await curl([
        '-u',
        `cam-1@${tenant}:${PASSWORD}`,
        '-H',
        'Content-Type: application/json',
        '--data-binary',
        JSON.stringify({ name, size }),
        `${first.url('http')}/v1/files/token`,
      ])
      expect(reply.status).toBe(201)
      return reply.json as { fileId: string; token: string; uploadUrl: string }
    }
    const done = await token('done.bin', 3_000)
    const cut = await token('cut.bin', 4 * 1024 * 1024)

    // The broker goes away: the completed upload is recorded, its event waits in the outbox.
    await kafka.proxy.cut()
    const doneBody = join(work, 'done.bin')
    writeFileSync(doneBody, randomBytes(3_000))
    const recorded = await curl([
      '-H',
      `x-auth-token: ${done.token}`,
      '--upload-file',
      doneBody,
      done.uploadUrl,
    ])
    expect(recorded.status).toBe(201)

    // The second body streams slowly; the process dies while part of it is in the blob store's tmp.
    const cutBody = join(work, 'cut.bin')
    writeFileSync(cutBody, randomBytes(4 * 1024 * 1024))
    slowUpload = spawn(
      'curl',
      [
        '-sS',
        '--limit-rate',
        '64K',
        '-H',
        `x-auth-token: ${cut.token}`,
        '--upload-file',
        cutBody,
        cut.uploadUrl,
      ],
      { stdio: 'ignore' },
    )
    await waitUntil(() => tempFiles().some((f) => f.size > 0), { timeoutMs: 20_000 })
    first.proc.child.kill('SIGKILL')
    expect(await first.proc.exited).toBe('SIGKILL')
    slowUpload.kill('SIGKILL')
    expect(tempFiles().length).toBeGreaterThan(0)

    // Back with the broker: the recorded upload is announced, the cut one is not, nothing is left.
    await kafka.proxy.restore()
    const second = await start()
    const [event] = await waitForRecords(
      kafka.brokers,
      `${prefix}.ingress`,
      (r) => r.headers['ce_type'] === FILE_UPLOADED && r.payload!.includes(done.fileId),
      { timeoutMs: 60_000 },
    )
    expect(JSON.parse(event!.payload!)).toMatchObject({ id: done.fileId, name: 'done.bin', size: 3_000 })
    const listed = await createApi(second.url('api')).request('GET', `/tenants/${tenant}/files`)
    expect(listed.status).toBe(200)
    expect((listed.body.items as Array<{ id: string }>).map((f) => f.id)).toEqual([done.fileId])
    expect(objectsOf()).toEqual([done.fileId])
    expect(tempFiles()).toEqual([])
    const events = (await readTopic(kafka.brokers, `${prefix}.ingress`)).filter(
      (r) => r.headers['ce_type'] === FILE_UPLOADED,
    )
    expect(events.map((r) => (JSON.parse(r.payload!) as { id: string }).id)).toEqual([done.fileId])
    // The interrupted upload's token was spent by the request that died: it cannot be replayed.
    const replay = await curl([
      '-H',
      `x-auth-token: ${cut.token}`,
      '--upload-file',
      doneBody,
      cut.uploadUrl.replace(first.url('http'), second.url('http')),
    ])
    expect(replay.status).toBe(401)
  })
})
