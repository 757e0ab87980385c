// The embedded log's own promises beyond the port contract: durability across kills, torn-tail
// recovery, segments and their indexes across restarts, retention, and one owner per data dir.
import { spawn } from 'node:child_process'
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, statSync, truncateSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import type { BusMessage } from '../../../core/bus/bus.ts'
import { createEmbeddedBus } from '../../../core/bus/embedded/index.ts'
import type { EmbeddedBus } from '../../../core/bus/embedded/index.ts'
import { isTributaryError } from '../../../core/errors.ts'
import { waitUntil } from '../../helpers/wait.ts'
import { createFaultyFiles } from './faulty-files.ts'

const open: EmbeddedBus[] = []
afterEach(async () => {
  await Promise.allSettled(open.splice(0).map((b) => b.close()))
})

async function bus(
  dataDir: string,
  options: Partial<Parameters<typeof createEmbeddedBus>[0]> = {},
): Promise<EmbeddedBus> {
  const b = await createEmbeddedBus({ dataDir, ...options })
  open.push(b)
  return b
}

async function readAll(b: EmbeddedBus, topic: string, expected: number): Promise<BusMessage[]> {
  const messages: BusMessage[] = []
  const sub = await b.subscribe({
    group: `read-${Math.random()}`,
    topics: [topic],
    from: 'earliest',
    handler: async (batch) => void messages.push(...batch),
  })
  await waitUntil(() => messages.length >= expected, { message: () => `${messages.length} of ${expected}` })
  await sub.close()
  return messages
}

const partitionDir = (dataDir: string, topic: string, partition = 0): string =>
  join(dataDir, 'bus', 'topics', topic, String(partition))
const segments = (dir: string): string[] =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.log'))
    .sort()

describe('embedded log', () => {
  it('loses nothing it acknowledged when its process is killed mid-publish', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-kill-'))
    const setup = await bus(dataDir)
    await setup.admin.createTopics([{ name: 't', partitions: 3 }])
    await setup.close()
    const description = JSON.stringify({ kind: 'embedded', dataDir, maxMessageBytes: 65536 })
    const child = spawn(
      process.execPath,
      [fileURLToPath(new URL('./bus-child.ts', import.meta.url)), description, 'publish-forever', 't'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
    const acked: Array<{ acked: string; partition: number; offset: number }> = []
    for await (const line of createInterface({ input: child.stdout })) {
      const fact = JSON.parse(line) as { acked?: string; partition: number; offset: number }
      if (fact.acked !== undefined) acked.push(fact as { acked: string; partition: number; offset: number })
      if (acked.length === 300) child.kill('SIGKILL')
    }
    await new Promise((resolve) =>
      child.exitCode === null && child.signalCode === null ? child.once('exit', resolve) : resolve(null),
    )
    const reopened = await bus(dataDir)
    const stored = await readAll(reopened, 't', acked.length)
    const byPosition = new Map(stored.map((m) => [`${m.partition}:${m.offset}`, m.value?.toString()]))
    for (const a of acked) expect(byPosition.get(`${a.partition}:${a.offset}`)).toBe(a.acked)
  })

  it('cuts a torn tail after a crash and goes on appending after the last whole record', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-torn-'))
    const first = await bus(dataDir)
    await first.admin.createTopics([{ name: 't', partitions: 1 }])
    await first.publish(['a', 'b', 'c'].map((v) => ({ topic: 't', value: Buffer.from(v) })))
    await first.close()
    const file = join(partitionDir(dataDir, 't'), segments(partitionDir(dataDir, 't'))[0]!)
    const whole = statSync(file).size
    // Half of a fourth record, as a crash during write would leave it.
    appendFileSync(file, Buffer.from([0, 0, 0, 80, 1, 2, 3, 4, 1, 0, 0]))
    const second = await bus(dataDir)
    expect(statSync(file).size).toBe(whole)
    const acks = await second.publish([{ topic: 't', value: Buffer.from('d') }])
    expect(acks[0]!.offset).toBe(3)
    const values = (await readAll(second, 't', 4)).map((m) => m.value?.toString())
    expect(values).toEqual(['a', 'b', 'c', 'd'])
  })

  it('cuts a record whose checksum does not match', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-crc-'))
    const first = await bus(dataDir)
    await first.admin.createTopics([{ name: 't', partitions: 1 }])
    await first.publish(['a', 'b'].map((v) => ({ topic: 't', value: Buffer.from(v) })))
    await first.close()
    const file = join(partitionDir(dataDir, 't'), segments(partitionDir(dataDir, 't'))[0]!)
    // Damage the last byte (the second record's value) without changing the length.
    const size = statSync(file).size
    truncateSync(file, size - 3)
    appendFileSync(file, Buffer.from([0, 0, 0x58]))
    const second = await bus(dataDir)
    const values = (await readAll(second, 't', 1)).map((m) => m.value?.toString())
    expect(values).toEqual(['a'])
    expect((await second.admin.offsets('t'))[0]!.next).toBe(1)
  })

  it('rolls segments, reads them from disk after a restart, and seeks by time across them', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-roll-'))
    const first = await bus(dataDir, { segmentBytes: 16 * 1024 })
    await first.admin.createTopics([{ name: 't', partitions: 1 }])
    const base = Date.now() - 100_000
    for (let i = 0; i < 50; i++) {
      await first.publish(
        Array.from({ length: 20 }, (_, j) => ({
          topic: 't',
          value: Buffer.alloc(100, i),
          timestamp: base + i * 1000 + j,
        })),
      )
    }
    await first.close()
    expect(segments(partitionDir(dataDir, 't')).length).toBeGreaterThan(5)
    const second = await bus(dataDir, { segmentBytes: 16 * 1024 })
    const all = await readAll(second, 't', 1000)
    expect(all.map((m) => m.offset)).toEqual(Array.from({ length: 1000 }, (_, i) => i))
    const fromTime: BusMessage[] = []
    await second.subscribe({
      group: 'time',
      topics: ['t'],
      from: { time: base + 37_000 },
      handler: async (b) => void fromTime.push(...b),
    })
    await waitUntil(() => fromTime.length >= 260)
    expect(fromTime[0]!.offset).toBe(740)
    expect(fromTime[0]!.timestamp).toBe(base + 37_000)
  })

  it('deletes whole segments past the retention size and age, oldest first', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-retention-'))
    const b = await bus(dataDir, { segmentBytes: 8 * 1024 })
    await b.admin.createTopics([
      { name: 'by-size', partitions: 1, config: { retentionBytes: 32 * 1024, retentionMs: -1 } },
      { name: 'by-age', partitions: 1, config: { retentionMs: 60_000, retentionBytes: -1 } },
    ])
    const now = Date.now()
    for (let i = 0; i < 40; i++) {
      await b.publish([
        { topic: 'by-size', value: Buffer.alloc(1000) },
        { topic: 'by-age', value: Buffer.alloc(1000), timestamp: i < 20 ? now - 120_000 : now },
      ])
    }
    const before = await b.admin.offsets('by-size')
    expect(before[0]!.earliest).toBe(0)
    expect(await b.applyRetention(now)).toBeGreaterThan(0)
    const sizeDir = partitionDir(dataDir, 'by-size')
    const kept = segments(sizeDir).reduce((sum, f) => sum + statSync(join(sizeDir, f)).size, 0)
    expect(kept).toBeLessThanOrEqual(32 * 1024 + 8 * 1024)
    const [bySize] = await b.admin.offsets('by-size')
    expect(bySize!.earliest).toBeGreaterThan(0)
    expect(bySize!.next).toBe(40)
    const [byAge] = await b.admin.offsets('by-age')
    expect(byAge!.earliest).toBeGreaterThan(0)
    expect(byAge!.earliest).toBeLessThanOrEqual(20)
    // A reader that starts before the log start is moved up to it.
    const remaining = await readAll(b, 'by-size', 40 - bySize!.earliest)
    expect(remaining[0]!.offset).toBe(bySize!.earliest)
  })

  it('refuses a second owner of the same data dir', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-lock-'))
    await bus(dataDir)
    const error = await createEmbeddedBus({ dataDir }).then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(isTributaryError(error, 'BUS_DATA_DIR_LOCKED')).toBe(true)
  })

  it('keeps committed offsets across a restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-offsets-'))
    const first = await bus(dataDir)
    await first.admin.createTopics([{ name: 't', partitions: 2 }])
    await first.publish(
      Array.from({ length: 10 }, (_, i) => ({ topic: 't', key: `k${i}`, value: Buffer.from(String(i)) })),
    )
    const seen: BusMessage[] = []
    await first.subscribe({
      group: 'g',
      topics: ['t'],
      from: 'earliest',
      handler: async (b) => void seen.push(...b),
    })
    await waitUntil(() => seen.length === 10)
    await first.close()
    const second = await bus(dataDir)
    await second.publish([{ topic: 't', key: 'k0', value: Buffer.from('after') }])
    const again: BusMessage[] = []
    await second.subscribe({
      group: 'g',
      topics: ['t'],
      from: 'earliest',
      handler: async (b) => void again.push(...b),
    })
    await waitUntil(() => again.length >= 1)
    expect(again.map((m) => m.value?.toString())).toEqual(['after'])
  })

  it('reuses the offsets of a failed write: after a restart the log reads back without a hole', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-failed-write-'))
    const files = createFaultyFiles()
    const first = await bus(dataDir, { files })
    await first.admin.createTopics([{ name: 't', partitions: 1 }])
    const [a] = await first.publish([{ topic: 't', value: Buffer.from('a') }])
    files.failWrites(1, { partial: true })
    const failed = await first
      .publish([{ topic: 't', value: Buffer.from('lost') }])
      .catch((err: unknown) => err)
    expect(isTributaryError(failed, 'BUS_UNAVAILABLE')).toBe(true)
    const [b] = await first.publish([{ topic: 't', value: Buffer.from('b') }])
    expect([a!.offset, b!.offset]).toEqual([0, 1])
    await first.close()
    const second = await bus(dataDir)
    const all = await readAll(second, 't', 2)
    expect(all.map((m) => [m.offset, m.value?.toString()])).toEqual([
      [0, 'a'],
      [1, 'b'],
    ])
  })

  it('goes on appending when rolling to a new segment fails, and rolls once it can', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-roll-fails-'))
    const files = createFaultyFiles()
    const first = await bus(dataDir, { files, segmentBytes: 4 * 1024 })
    await first.admin.createTopics([{ name: 't', partitions: 1 }])
    await first.publish([{ topic: 't', value: Buffer.alloc(3000, 1) }])
    // The next appends pass the segment size, but neither an index nor a new segment can be created.
    files.failCreates(3)
    for (let i = 0; i < 3; i++) await first.publish([{ topic: 't', value: Buffer.alloc(3000, 2) }])
    expect(segments(partitionDir(dataDir, 't'))).toHaveLength(1)
    for (let i = 0; i < 3; i++) await first.publish([{ topic: 't', value: Buffer.alloc(3000, 3) }])
    await first.close()
    expect(segments(partitionDir(dataDir, 't')).length).toBeGreaterThan(1)
    const second = await bus(dataDir, { segmentBytes: 4 * 1024 })
    const all = await readAll(second, 't', 7)
    expect(all.map((m) => m.offset)).toEqual([0, 1, 2, 3, 4, 5, 6])
  })

  it('reports a full disk in its health and recovers by itself once space is back, with no publish', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-health-'))
    const files = createFaultyFiles()
    const b = await bus(dataDir, { files })
    await b.admin.createTopics([{ name: 't', partitions: 1 }])
    files.fill()
    await b.publish([{ topic: 't', value: Buffer.from('x') }]).catch(() => undefined)
    const sick = await b.health()
    expect(sick.ok).toBe(false)
    expect(sick.reason).toContain('ENOSPC')
    files.heal()
    expect(await b.health()).toEqual({ ok: true })
  })

  it('saves committed offsets again after a failed save, without waiting for another commit', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-offsets-fail-'))
    const files = createFaultyFiles()
    const b = await bus(dataDir, { files })
    await b.admin.createTopics([{ name: 't', partitions: 1 }])
    await b.publish([{ topic: 't', value: Buffer.from('x') }])
    files.fill()
    const seen: BusMessage[] = []
    await b.subscribe({
      group: 'g',
      topics: ['t'],
      from: 'earliest',
      handler: async (m) => void seen.push(...m),
    })
    await waitUntil(() => seen.length === 1)
    await waitUntil(async () => (await b.health()).reason?.includes('consumer offsets') === true)
    files.heal()
    await waitUntil(async () => (await b.health()).ok, { message: () => 'offsets saved again' })
    await b.close()
    const saved = JSON.parse(readFileSync(join(dataDir, 'bus', 'groups', 'g.json'), 'utf8')) as {
      offsets: Record<string, number>
    }
    expect(saved.offsets).toEqual({ 't:0': 1 })
  })
})
