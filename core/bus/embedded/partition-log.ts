// One partition of the embedded log: segments on disk, group commit (many appends, one fsync),
// a high watermark that only moves past synced records, an in-memory tail for caught-up readers,
// and retention by age and size.
import { mkdir, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { BusMessage, Headers } from '../bus.ts'
import { decodeRecord, encodeRecord, toMessage } from './record-format.ts'
import type { StoredRecord } from './record-format.ts'
import { Segment, parseSegmentFileName, segmentFileName } from './segment.ts'
import type { RecoveryReport } from './segment.ts'

export interface PartitionSettings {
  readonly segmentBytes: number
  readonly retentionMs: number
  readonly retentionBytes: number
}

export interface AppendInput {
  readonly key: Buffer | undefined
  readonly value: Buffer | undefined
  readonly headers: Headers
  readonly timestamp: number
}

interface Pending {
  readonly buffers: Buffer[]
  readonly records: StoredRecord[]
  readonly waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }>
}

const TAIL_RECORDS = 4096
const READ_CHUNK = 256 * 1024

export class PartitionLog {
  readonly topic: string
  readonly partition: number
  readonly dir: string
  settings: PartitionSettings
  #segments: Segment[]
  #nextOffset: number
  #durable: number
  #pending: Pending = { buffers: [], records: [], waiters: [] }
  #flushing: Promise<void> | undefined
  #tail: BusMessage[] = []
  #dataWaiters = new Set<() => void>()
  #closed = false

  private constructor(
    topic: string,
    partition: number,
    dir: string,
    settings: PartitionSettings,
    segments: Segment[],
  ) {
    this.topic = topic
    this.partition = partition
    this.dir = dir
    this.settings = settings
    this.#segments = segments
    this.#nextOffset = segments.at(-1)!.nextOffset
    this.#durable = this.#nextOffset
  }

  /** Opens (or creates) the partition directory, recovering the active segment's tail. */
  static async open(
    topic: string,
    partition: number,
    dir: string,
    settings: PartitionSettings,
    onRecovery: (segment: string, report: RecoveryReport) => void,
  ): Promise<PartitionLog> {
    await mkdir(dir, { recursive: true })
    const bases = (await readdir(dir))
      .map(parseSegmentFileName)
      .filter((b): b is number => b !== undefined)
      .sort((a, b) => a - b)
    const segments: Segment[] = []
    for (const [i, base] of bases.entries()) {
      const last = i === bases.length - 1
      const { segment, recovery } = await Segment.open(join(dir, segmentFileName(base)), base, !last)
      if (recovery.truncatedBytes > 0) onRecovery(segment.path, recovery)
      segments.push(segment)
    }
    if (segments.length === 0) segments.push(await Segment.create(join(dir, segmentFileName(0)), 0))
    return new PartitionLog(topic, partition, dir, settings, segments)
  }

  get logStartOffset(): number {
    return this.#segments[0]!.baseOffset
  }

  /** One past the last durable record: what readers may see. */
  get highWatermark(): number {
    return this.#durable
  }

  get sizeBytes(): number {
    let size = 0
    for (const s of this.#segments) size += s.size
    return size
  }

  /** Assigns offsets now; the promise resolves once the records are synced to disk. */
  append(inputs: readonly AppendInput[]): { offsets: number[]; durable: Promise<void> } {
    if (this.#closed) throw new Error(`partition ${this.topic}:${this.partition} is closed`)
    const offsets: number[] = []
    for (const input of inputs) {
      const record: StoredRecord = { offset: this.#nextOffset++, ...input }
      this.#pending.records.push(record)
      this.#pending.buffers.push(encodeRecord(record))
      offsets.push(record.offset)
    }
    const durable = new Promise<void>((resolve, reject) => this.#pending.waiters.push({ resolve, reject }))
    this.#scheduleFlush()
    return { offsets, durable }
  }

  #scheduleFlush(): void {
    if (this.#flushing !== undefined) return
    // setImmediate lets every append of this event-loop turn join the same write and fsync.
    this.#flushing = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#flushLoop())
  }

  async #flushLoop(): Promise<void> {
    try {
      while (this.#pending.records.length > 0) {
        const batch = this.#pending
        this.#pending = { buffers: [], records: [], waiters: [] }
        try {
          const active = this.#segments.at(-1)!
          await active.append(batch.buffers, batch.records)
          await active.sync()
          this.#durable = batch.records.at(-1)!.offset + 1
          this.#remember(batch.records)
          for (const w of batch.waiters) w.resolve()
          if (active.size >= this.settings.segmentBytes) await this.#roll()
        } catch (err) {
          for (const w of batch.waiters) w.reject(err)
        }
      }
    } finally {
      this.#flushing = undefined
    }
  }

  async flushed(): Promise<void> {
    while (this.#flushing !== undefined) await this.#flushing
  }

  #remember(records: readonly StoredRecord[]): void {
    for (const r of records) this.#tail.push(toMessage(this.topic, this.partition, r))
    if (this.#tail.length > TAIL_RECORDS * 2) this.#tail = this.#tail.slice(-TAIL_RECORDS)
    const waiters = [...this.#dataWaiters]
    this.#dataWaiters.clear()
    for (const wake of waiters) wake()
  }

  async #roll(): Promise<void> {
    const active = this.#segments.at(-1)!
    if (active.size === 0) return
    await active.saveIndex()
    this.#segments.push(
      await Segment.create(join(this.dir, segmentFileName(active.nextOffset)), active.nextOffset),
    )
  }

  /** Resolves when a record at or past `offset` is readable, or when `signal` aborts. */
  waitFor(offset: number, signal: AbortSignal): Promise<void> {
    if (this.#durable > offset || signal.aborted || this.#closed) return Promise.resolve()
    return new Promise((resolve) => {
      const wake = (): void => {
        this.#dataWaiters.delete(wake)
        signal.removeEventListener('abort', wake)
        resolve()
      }
      this.#dataWaiters.add(wake)
      signal.addEventListener('abort', wake, { once: true })
    })
  }

  /** Up to `maxRecords` durable records from `offset` (moved up to the log start if it fell behind). */
  async read(offset: number, maxRecords: number, maxBytes: number): Promise<BusMessage[]> {
    const from = Math.max(offset, this.logStartOffset)
    const end = this.#durable
    if (from >= end) return []
    const first = this.#tail[0]
    if (first !== undefined && from >= first.offset) {
      const start = from - first.offset
      return this.#tail.slice(start, Math.min(start + maxRecords, end - first.offset))
    }
    try {
      return await this.#readDisk(from, end, maxRecords, maxBytes)
    } catch (err) {
      // Retention may have removed the segment under us; read again from the new start.
      if (from < this.logStartOffset) return this.read(this.logStartOffset, maxRecords, maxBytes)
      throw err
    }
  }

  async #readDisk(from: number, end: number, maxRecords: number, maxBytes: number): Promise<BusMessage[]> {
    const out: BusMessage[] = []
    let bytes = 0
    // Normally one segment answers; the loop only moves on when a segment ends before a record is
    // found (the offset sat at a segment's end, or in a gap left by recovery).
    for (let i = this.#segmentIndexOf(from); i < this.#segments.length && out.length === 0; i++) {
      const segment = this.#segments[i]!
      let position = segment.positionOf(from)
      while (out.length < maxRecords && bytes < maxBytes && position < segment.size) {
        const chunk = await segment.read(position, Math.max(READ_CHUNK, Math.min(maxBytes, 8 * READ_CHUNK)))
        let at = 0
        while (at < chunk.length && out.length < maxRecords && bytes < maxBytes) {
          const result = decodeRecord(chunk, at)
          if (result.kind === 'incomplete') {
            if (at > 0) break
            // A single record larger than the chunk: read exactly that record.
            const whole = decodeRecord(await segment.read(position, result.needed), 0)
            if (whole.kind !== 'record')
              throw new Error(`unreadable record in ${segment.path} at ${position}`)
            if (whole.record.offset >= end) return out
            if (whole.record.offset >= from) out.push(toMessage(this.topic, this.partition, whole.record))
            at = whole.length
            break
          }
          if (result.kind === 'corrupt') {
            throw new Error(`corrupt record in ${segment.path} at ${position + at}: ${result.reason}`)
          }
          const r = result.record
          if (r.offset >= end) return out
          if (r.offset >= from) {
            out.push(toMessage(this.topic, this.partition, r))
            bytes += result.length
          }
          at += result.length
        }
        position += at
      }
    }
    return out
  }

  #segmentIndexOf(offset: number): number {
    let found = 0
    for (let i = 0; i < this.#segments.length; i++) {
      if (this.#segments[i]!.baseOffset <= offset) found = i
      else break
    }
    return found
  }

  /** The first offset whose record time is at or after `time`; the high watermark if none. */
  async offsetForTime(time: number): Promise<number> {
    for (const segment of this.#segments) {
      if (segment.maxTimestamp < time) continue
      let position = segment.positionForTime(time)
      while (position < segment.size) {
        const chunk = await segment.read(position, READ_CHUNK)
        let at = 0
        for (;;) {
          const result = decodeRecord(chunk, at)
          if (result.kind !== 'record') break
          if (result.record.timestamp >= time && result.record.offset < this.#durable)
            return result.record.offset
          at += result.length
        }
        if (at === 0) break
        position += at
      }
    }
    return this.#durable
  }

  /** Deletes whole segments past the age or size limit; the active segment rolls first if expired. */
  async applyRetention(now: number): Promise<number> {
    const { retentionMs, retentionBytes } = this.settings
    await this.flushed()
    const active = this.#segments.at(-1)!
    if (retentionMs >= 0 && active.size > 0 && active.maxTimestamp < now - retentionMs) await this.#roll()
    let deleted = 0
    let total = this.sizeBytes
    while (this.#segments.length > 1) {
      const oldest = this.#segments[0]!
      const expired = retentionMs >= 0 && oldest.maxTimestamp < now - retentionMs
      const oversize = retentionBytes >= 0 && total - oldest.size >= retentionBytes
      if (!expired && !oversize) break
      this.#segments.shift()
      total -= oldest.size
      await oldest.delete()
      deleted++
    }
    const start = this.logStartOffset
    if (this.#tail.length > 0 && this.#tail[0]!.offset < start)
      this.#tail = this.#tail.filter((m) => m.offset >= start)
    return deleted
  }

  async close(): Promise<void> {
    await this.flushed()
    this.#closed = true
    for (const wake of [...this.#dataWaiters]) wake()
    for (const s of this.#segments) await s.close()
  }
}
