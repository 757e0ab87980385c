// A full disk under the embedded event log, as an operator meets it: a running `tributary start`
// whose bus directory is a small tmpfs, devices posting over HTTP, the disk filled and freed. While
// it is full the process refuses (503) and says why; once space is back it goes on by itself, stays
// responsive throughout, and every id it answered 202 reaches the tenant's events (read over the
// events WebSocket) without a restart.
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { curl } from '../helpers/curl.ts'
import type { Api } from '../helpers/mqtt.ts'
import { ADMIN_TOKEN, createApi } from '../helpers/mqtt.ts'
import type { TributaryProcess } from '../helpers/process.ts'
import { startProcess } from '../helpers/process.ts'
import { waitUntil } from '../helpers/wait.ts'

const TENANT = 'acme'
const DEVICE = 'camera-1'
const PASSWORD = 'correct horse battery'
const AUTH = `Basic ${Buffer.from(`${DEVICE}@${TENANT}:${PASSWORD}`).toString('base64')}`

let dataDir = ''
let busDir = ''
let proc: TributaryProcess
let api: Api
let httpUrl = ''
let managementUrl = ''
let socket: WebSocket
const arrived = new Set<string>()

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tributary-e2e-full-'))
  busDir = join(dataDir, 'bus')
  mkdirSync(busDir)
  // CI runs as root, so a real small filesystem can be had; its size leaves room for the log's
  // first segments and little else.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', busDir])
  proc = startProcess(['start'], { TRIBUTARY_DATA_DIR: dataDir, TRIBUTARY_ADMIN_TOKEN: ADMIN_TOKEN })
  const started = await proc.waitForLog((l) => l.msg === 'tributary started')
  const ports = started['ports'] as Record<string, number>
  httpUrl = `http://127.0.0.1:${ports['http']}`
  managementUrl = `http://127.0.0.1:${ports['management']}`
  api = createApi(`http://127.0.0.1:${ports['api']}`)
  // Eight publishers for one device: above the default per-device rate, which is not under test.
  await api.createTenant(TENANT, { quotas: { maxMessagesPerSecond: 100_000 } })
  await api.createDevice(TENANT, DEVICE)
  await api.setPassword(TENANT, DEVICE, PASSWORD)
  socket = new WebSocket(
    `ws://127.0.0.1:${ports['api']}/api/v1/tenants/${TENANT}/events?access_token=${ADMIN_TOKEN}&from=earliest&type=io.tributary.telemetry.v1`,
    ['cloudevents.json'],
  )
  socket.on('message', (data: Buffer) => {
    const event = JSON.parse(data.toString()) as { data?: { id?: string } }
    if (event.data?.id !== undefined) arrived.add(event.data.id)
  })
  await new Promise((resolve, reject) => {
    socket.once('open', resolve)
    socket.once('error', reject)
  })
}, 180_000)

afterAll(async () => {
  socket?.close()
  const code = await proc?.stop('SIGTERM')
  try {
    execFileSync('umount', ['-l', busDir])
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
  expect(code).toBe(0)
})

/** Posts one message; resolves with the status (0 when the request itself failed or timed out). */
async function post(id: string, size = 64): Promise<number> {
  try {
    const reply = await fetch(`${httpUrl}/v1/frames`, {
      method: 'POST',
      headers: { authorization: AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ id, pad: 'x'.repeat(size) }),
      signal: AbortSignal.timeout(15_000),
    })
    await reply.arrayBuffer()
    return reply.status
  } catch {
    return 0
  }
}

/** Writes zeros into a file on the bus filesystem until it is full. */
async function fillDisk(): Promise<string> {
  const filler = join(busDir, `filler-${Date.now()}`)
  const file = await open(filler, 'w')
  const chunk = Buffer.alloc(64 * 1024)
  try {
    for (;;) await file.write(chunk)
  } catch (err) {
    expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC')
  } finally {
    await file.close()
  }
  return filler
}

/** The management listener answers /livez within a few seconds, every time it is asked. */
function watchLiveness(): { stop: () => Promise<string[]> } {
  const problems: string[] = []
  let stopped = false
  const loop = (async () => {
    while (!stopped) {
      try {
        const reply = await fetch(`${managementUrl}/livez`, { signal: AbortSignal.timeout(5_000) })
        if (reply.status !== 200) problems.push(`/livez answered ${reply.status}`)
      } catch (err) {
        problems.push(`/livez did not answer: ${(err as Error).message}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })()
  return {
    stop: async () => {
      stopped = true
      await loop
      return problems
    },
  }
}

/**
 * `publishers` devices posting at once until each has `count` posts accepted (a refused post is
 * sent again shortly, as a device would), bounded in time; returns the ids answered 202.
 */
async function load(prefix: string, publishers: number, count: number, during?: () => Promise<void>) {
  const accepted: string[] = []
  const statuses = new Map<number, number>()
  const deadline = Date.now() + 60_000
  const runs = Array.from({ length: publishers }, async (_, p) => {
    for (let i = 0; i < count && Date.now() < deadline;) {
      const id = `${prefix}-${p}-${i}`
      const status = await post(id)
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
      if (status === 202) {
        accepted.push(id)
        i++
      } else await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })
  await during?.()
  await Promise.all(runs)
  return { accepted, statuses }
}

describe('embedded event log on a full disk (e2e: tmpfs, fetch, curl, ws)', () => {
  it('refuses while the disk is full, then goes on by itself and delivers everything it accepted', async () => {
    const liveness = watchLiveness()
    const accepted: string[] = []
    const first = await load('warm', 1, 50)
    expect([...first.statuses]).toEqual([[202, 50]])
    accepted.push(...first.accepted)

    // Full: a publish is refused as unavailable, with a retry hint, and readiness says why.
    const filler = await fillDisk()
    const refused = await curl([
      '-H',
      `authorization: ${AUTH}`,
      '-H',
      'content-type: application/json',
      '--data-binary',
      JSON.stringify({ id: 'refused-1', pad: 'y'.repeat(64 * 1024) }),
      `${httpUrl}/v1/frames`,
    ])
    expect(refused.status).toBe(503)
    expect(refused.headers['retry-after']).toBeDefined()
    const ready = await curl([`${managementUrl}/readyz`])
    expect(ready.status).toBe(503)
    expect(ready.body).toContain('ENOSPC')

    // Freed at once, then eight devices post together.
    await rm(filler)
    const burst = await load('burst', 8, 25)
    accepted.push(...burst.accepted)
    expect(burst.accepted).toHaveLength(8 * 25)
    expect([...burst.statuses.keys()].filter((s) => s !== 202 && s !== 503)).toEqual([])

    // Filled under load and freed again while the load goes on.
    const underLoad = await load('load', 8, 40, async () => {
      const more = await fillDisk()
      await new Promise((resolve) => setTimeout(resolve, 300))
      await rm(more)
    })
    accepted.push(...underLoad.accepted)
    expect(underLoad.accepted).toHaveLength(8 * 40)
    // Refused while the disk was full, and only as unavailable (never a 500 or a hang).
    expect([...underLoad.statuses.keys()].filter((s) => s !== 202 && s !== 503)).toEqual([])

    // Back to normal without a restart: ready again once its probe finds the disk writable, and
    // then every post is accepted.
    await waitUntil(async () => (await curl([`${managementUrl}/readyz`])).status === 200, {
      timeoutMs: 30_000,
      message: () => 'readiness after the disk was freed',
    })
    await waitUntil(async () => (await post('probe')) === 202, { timeoutMs: 30_000 })
    accepted.push('probe')
    const after = await load('after', 4, 10)
    expect([...after.statuses]).toEqual([[202, 40]])
    accepted.push(...after.accepted)

    await waitUntil(() => accepted.every((id) => arrived.has(id)), {
      timeoutMs: 60_000,
      message: () =>
        `${accepted.filter((id) => !arrived.has(id)).length} of ${accepted.length} accepted ids missing: ` +
        accepted
          .filter((id) => !arrived.has(id))
          .slice(0, 10)
          .join(', '),
    })
    expect(await liveness.stop()).toEqual([])
  })
})
