// One partition of the embedded log: segments on disk, group commit (many appends, one fsync),
// a high watermark that only moves past synced records, an in-memory tail for caught-up readers,
// and retention by age and size.
//
// Offsets are assigned when a batch is written, not when it is queued, and become visible only
// once it is synced: a batch whose write or sync fails leaves the log exactly as it was (no
// offset used, no byte kept), so later records take its offsets and readers never meet a hole.
import { mkdir, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { BusMessage, Headers } from '../bus.ts'
import { syncDirectory } from './files.ts'
import type { LogFiles } from './files.ts'
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

interface Waiter {
  readonly count: number
  readonly resolve: (offsets: number[]) => void
  readonly reject: (err: unknown) => void
}

interface Pending {
  readonly inputs: AppendInput[]
  readonly waiters: Waiter[]
}

const emptyPending = (): Pending => ({ inputs: [], waiters: [] })

const TAIL_RECORDS = 4096
const READ_CHUNK = 256 * 1024

export class PartitionLog {
  readonly topic: string
  readonly partition: number
  readonly dir: string
  settings: PartitionSettings
  readonly #files: LogFiles
  #segments: Segment[]
  /** One past the last synced record: the next offset to assign and what readers may see. */
  #durable: number
  #pending: Pending = emptyPending()
  #flushing: Promise<void> | undefined
  readonly #onRollError: (err: unknown) => void
  #tail: BusMessage[] = []
  #dataWaiters = new Set<() => void>()
  #closed = false

  private constructor(
    files: LogFiles,
    topic: string,
    partition: number,
    dir: string,
    settings: PartitionSettings,
    segments: Segment[],
    onRollError: (err: unknown) => void,
  ) {
    this.#files = files
    this.#onRollError = onRollError
    this.topic = topic
    this.partition = partition
    this.dir = dir
    this.settings = settings
    this.#segments = segments
    this.#durable = segments.at(-1)!.nextOffset
  }

  /** Opens (or creates) the partition directory, recovering the active segment's tail. */
  static async open(
    files: LogFiles,
    topic: string,
    partition: number,
    dir: string,
    settings: PartitionSettings,
    onRecovery: (segment: string, report: RecoveryReport) => void,
    onRollError: (err: unknown) => void = () => undefined,
  ): Promise<PartitionLog> {
    await mkdir(dir, { recursive: true })
    const bases = (await readdir(dir))
      .map(parseSegmentFileName)
      .filter((b): b is number => b !== undefined)
      .sort((a, b) => a - b)
    const segments: Segment[] = []
    for (const [i, base] of bases.entries()) {
      const last = i === bases.length - 1
      const { segment, recovery } = await Segment.open(files, join(dir, segmentFileName(base)), base, !last)
      if (recovery.truncatedBytes > 0) onRecovery(segment.path, recovery)
      segments.push(segment)
    }
    if (segments.length === 0) {
      segments.push(await Segment.create(files, join(dir, segmentFileName(0)), 0))
      await syncDirectory(files, dir)
    }
    return new PartitionLog(files, topic, partition, dir, settings, segments, onRollError)
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

  /**
   * Queues records for the next group commit; resolves with their offsets once they are synced,
   * or rejects (having used no offset) when the write fails.
   */
  append(inputs: readonly AppendInput[]): Promise<number[]> {
    if (this.#closed) return Promise.reject(new Error(`partition ${this.topic}:${this.partition} is closed`))
    const done = new Promise<number[]>((resolve, reject) =>
      this.#pending.waiters.push({ count: inputs.length, resolve, reject }),
    )
    this.#pending.inputs.push(...inputs)
    this.#scheduleFlush()
    return done
  }

  #scheduleFlush(): void {
    if (this.#flushing !== undefined) return
    // setImmediate lets every append of this event-loop turn join the same write and fsync.
    this.#flushing = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#flushLoop())
  }

  async #flushLoop(): Promise<void> {
    try {
      while (this.#pending.inputs.length > 0) {
        const batch = this.#pending
        this.#pending = emptyPending()
        const base = this.#durable
        const records = batch.inputs.map((input, i): StoredRecord => ({ offset: base + i, ...input }))
        const active = this.#segments.at(-1)!
        try {
          await active.append(records.map(encodeRecord), records)
        } catch (err) {
          for (const w of batch.waiters) w.reject(err)
          continue
        }
        this.#durable = base + records.length
        this.#remember(records)
        let next = base
        for (const w of batch.waiters) {
          w.resolve(Array.from({ length: w.count }, (_, i) => next + i))
          next += w.count
        }
        if (active.size >= this.settings.segmentBytes) await this.#roll()
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

  /**
   * Closes the active segment (its index saved) and starts the next one. A failure leaves the
   * active segment in place, still appendable; the next append past the size limit tries again.
   */
  async #roll(): Promise<void> {
    const active = this.#segments.at(-1)!
    if (active.size === 0) return
    try {
      await active.saveIndex()
      const next = await Segment.create(
        this.#files,
        join(this.dir, segmentFileName(active.nextOffset)),
        active.nextOffset,
      ).catch(async (err: unknown) => {
        // A file left by an earlier failed attempt holds nothing: start it afresh.
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
        await this.#files.unlink(join(this.dir, segmentFileName(active.nextOffset)))
        return Segment.create(
          this.#files,
          join(this.dir, segmentFileName(active.nextOffset)),
          active.nextOffset,
        )
      })
      try {
        await syncDirectory(this.#files, this.dir)
      } catch (err) {
        await next.delete().catch(() => undefined)
        throw err
      }
      this.#segments.push(next)
    } catch (err) {
      this.#onRollError(err)
    }
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
    // The tail is contiguous (offsets are never skipped), so position = offset - first offset;
    // the check keeps a reader from ever being handed a later record than the one it asked for.
    if (first !== undefined && from >= first.offset && this.#tail[from - first.offset]?.offset === from) {
      const start = from - first.offset
      return this.#tail.slice(start, Math.min(start + maxRecords, end - first.offset))
    }
    let records: BusMessage[]
    try {
      records = await this.#readDisk(from, end, maxRecords, maxBytes)
    } catch (err) {
      // Retention may have removed the segment under us; read again from the new start.
      if (from < this.logStartOffset) return this.read(this.logStartOffset, maxRecords, maxBytes)
      throw err
    }
    // Below the high watermark there is always a record to hand out: an empty answer here would
    // make a reader wait for nothing (or spin), so it is an error the reader backs off from.
    if (records.length === 0)
      throw new Error(`${this.topic}:${this.partition}: no record found from offset ${from} below ${end}`)
    return records
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
    this.#closed = true
    await this.flushed()
    for (const wake of [...this.#dataWaiters]) wake()
    for (const s of this.#segments) await s.close()
  }
}
