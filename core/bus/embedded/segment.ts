// One segment file of a partition: records appended at the end, a sparse in-memory index of
// (offset, position, max timestamp so far) every few KiB, saved beside the file once it is closed.
// Only bytes that were written and synced count: a failed write or sync leaves size, index and
// next offset as they were, and the bytes it may have left past the end are cut before the next write.
import { readFile, rm } from 'node:fs/promises'
import { dirname } from 'node:path'
import { replaceFile } from './files.ts'
import type { LogFile, LogFiles } from './files.ts'
import { decodeRecord } from './record-format.ts'
import type { StoredRecord } from './record-format.ts'

const INDEX_INTERVAL_BYTES = 4096
const SCAN_CHUNK = 1024 * 1024
const INDEX_MAGIC = 0x54524958 // "TRIX"
const INDEX_HEADER = 4 + 8 + 8 + 8
const INDEX_ENTRY = 4 + 4 + 8

export const segmentFileName = (baseOffset: number): string => `${String(baseOffset).padStart(20, '0')}.log`
export const parseSegmentFileName = (name: string): number | undefined =>
  /^\d{20}\.log$/.test(name) ? Number(name.slice(0, 20)) : undefined

export interface RecoveryReport {
  /** Bytes cut from the end because they did not form whole, valid records. */
  readonly truncatedBytes: number
  readonly reason?: string
}

export class Segment {
  readonly baseOffset: number
  readonly path: string
  readonly #files: LogFiles
  #handle: LogFile
  /** Bytes of whole, synced records; anything in the file past this is not part of the log. */
  size = 0
  /** A failed write may have left bytes past `size`; they are cut before anything else is written. */
  #tailDirty = false
  /** One past the last offset stored here. */
  nextOffset: number
  /** Greatest record timestamp stored here (-1 when empty). */
  maxTimestamp = -1
  #indexOffsets: number[] = []
  #indexPositions: number[] = []
  #indexTimestamps: number[] = []
  #bytesSinceIndex = 0

  private constructor(files: LogFiles, path: string, baseOffset: number, handle: LogFile) {
    this.#files = files
    this.path = path
    this.baseOffset = baseOffset
    this.nextOffset = baseOffset
    this.#handle = handle
  }

  static async create(files: LogFiles, path: string, baseOffset: number): Promise<Segment> {
    return new Segment(files, path, baseOffset, await files.open(path, 'wx+'))
  }

  /** Opens an existing segment: from its saved index if that matches the file, else by scanning. */
  static async open(
    files: LogFiles,
    path: string,
    baseOffset: number,
    trustIndex: boolean,
  ): Promise<{ segment: Segment; recovery: RecoveryReport }> {
    const segment = new Segment(files, path, baseOffset, await files.open(path, 'r+'))
    const { size } = await segment.#handle.stat()
    if (trustIndex && (await segment.#loadIndex(size))) return { segment, recovery: { truncatedBytes: 0 } }
    return { segment, recovery: await segment.#scan(size) }
  }

  /**
   * Writes whole encoded records at the end and syncs them; only then do size, index and next
   * offset move. On failure nothing moves, and the partial bytes are cut (now or before the next
   * write), so the file never holds a hole or a stray record in front of later ones.
   */
  async append(
    buffers: readonly Buffer[],
    records: ReadonlyArray<Pick<StoredRecord, 'offset' | 'timestamp'>>,
  ): Promise<void> {
    const start = this.size
    let written = 0
    for (const b of buffers) written += b.length
    try {
      if (this.#tailDirty) {
        await this.#handle.truncate(start)
        this.#tailDirty = false
      }
      let done = 0
      while (done < written) {
        this.#tailDirty = true
        const { bytesWritten } = await this.#handle.writev(
          done === 0 ? (buffers as Buffer[]) : sliceBuffers(buffers, done),
          start + done,
        )
        done += bytesWritten
      }
      await this.#handle.datasync()
    } catch (err) {
      // Try to cut the partial write now; if that fails too, the next append tries again first.
      if (this.#tailDirty) {
        await this.#handle.truncate(start).then(
          () => (this.#tailDirty = false),
          () => undefined,
        )
      }
      throw err
    }
    this.#tailDirty = false
    let position = start
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!
      this.#noteRecord(record.offset, position, record.timestamp, buffers[i]!.length)
      position += buffers[i]!.length
    }
    this.size = position
  }

  async read(position: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(Math.min(length, this.size - position))
    let done = 0
    while (done < buf.length) {
      const { bytesRead } = await this.#handle.read(buf, done, buf.length - done, position + done)
      if (bytesRead === 0) break
      done += bytesRead
    }
    return done === buf.length ? buf : buf.subarray(0, done)
  }

  /** File position of the last indexed record at or before `offset`. */
  positionOf(offset: number): number {
    const i = lastAtMost(this.#indexOffsets, offset)
    return i < 0 ? 0 : this.#indexPositions[i]!
  }

  /** File position from which a scan finds the first record with timestamp >= `time`. */
  positionForTime(time: number): number {
    // Timestamps in the index are running maxima, so they are sorted even if record times are not.
    const i = lastBelow(this.#indexTimestamps, time)
    return i < 0 ? 0 : this.#indexPositions[i]!
  }

  /** Writes the sparse index beside the segment so a restart need not scan it. */
  async saveIndex(): Promise<void> {
    const n = this.#indexOffsets.length
    const buf = Buffer.alloc(INDEX_HEADER + n * INDEX_ENTRY)
    buf.writeUInt32BE(INDEX_MAGIC, 0)
    buf.writeDoubleBE(this.nextOffset, 4)
    buf.writeDoubleBE(this.maxTimestamp, 12)
    buf.writeDoubleBE(this.size, 20)
    for (let i = 0; i < n; i++) {
      const p = INDEX_HEADER + i * INDEX_ENTRY
      buf.writeUInt32BE(this.#indexOffsets[i]! - this.baseOffset, p)
      buf.writeUInt32BE(this.#indexPositions[i]!, p + 4)
      buf.writeDoubleBE(this.#indexTimestamps[i]!, p + 8)
    }
    await replaceFile(this.#files, dirname(this.path), this.#indexPath(), buf)
  }

  async close(): Promise<void> {
    await this.#handle.close()
  }

  async delete(): Promise<void> {
    await this.#handle.close().catch(() => undefined)
    // The index first: a crash between the two leaves a segment that is scanned, never a stray index.
    await rm(this.#indexPath(), { force: true })
    await rm(this.path, { force: true })
  }

  #indexPath(): string {
    return this.path.replace(/\.log$/, '.index')
  }

  #noteRecord(offset: number, position: number, timestamp: number, length: number): void {
    if (timestamp > this.maxTimestamp) this.maxTimestamp = timestamp
    if (this.#indexOffsets.length === 0 || this.#bytesSinceIndex >= INDEX_INTERVAL_BYTES) {
      this.#indexOffsets.push(offset)
      this.#indexPositions.push(position)
      this.#indexTimestamps.push(this.maxTimestamp)
      this.#bytesSinceIndex = 0
    }
    this.#bytesSinceIndex += length
    this.nextOffset = offset + 1
  }

  async #loadIndex(fileSize: number): Promise<boolean> {
    let buf: Buffer
    try {
      buf = await readFile(this.#indexPath())
    } catch {
      return false
    }
    if (buf.length < INDEX_HEADER || (buf.length - INDEX_HEADER) % INDEX_ENTRY !== 0) return false
    if (buf.readUInt32BE(0) !== INDEX_MAGIC || buf.readDoubleBE(20) !== fileSize) return false
    this.nextOffset = buf.readDoubleBE(4)
    this.maxTimestamp = buf.readDoubleBE(12)
    this.size = fileSize
    for (let p = INDEX_HEADER; p < buf.length; p += INDEX_ENTRY) {
      this.#indexOffsets.push(this.baseOffset + buf.readUInt32BE(p))
      this.#indexPositions.push(buf.readUInt32BE(p + 4))
      this.#indexTimestamps.push(buf.readDoubleBE(p + 8))
    }
    return true
  }

  /** Reads every record, rebuilding the index, and cuts a torn or corrupt tail. */
  async #scan(fileSize: number): Promise<RecoveryReport> {
    this.size = fileSize
    let position = 0
    let chunk: Buffer = Buffer.alloc(0)
    let chunkStart = 0
    let problem: string | undefined
    while (position < fileSize) {
      const at = position - chunkStart
      const result = decodeRecord(chunk, at)
      if (result.kind === 'record') {
        if (result.record.offset < this.nextOffset) {
          problem = `offset ${result.record.offset} goes backwards`
          break
        }
        this.#noteRecord(result.record.offset, position, result.record.timestamp, result.length)
        position += result.length
        continue
      }
      if (result.kind === 'corrupt') {
        problem = result.reason
        break
      }
      // Incomplete: read further, unless the file ends first (a torn write).
      if (position + result.needed > fileSize) {
        problem = 'incomplete record at the end of the file'
        break
      }
      chunk = await this.read(position, Math.max(SCAN_CHUNK, result.needed))
      chunkStart = position
    }
    const truncatedBytes = fileSize - position
    if (truncatedBytes > 0) {
      this.size = position
      this.#tailDirty = true
      await this.#handle.truncate(position)
      await this.#handle.datasync()
      this.#tailDirty = false
    }
    return problem === undefined ? { truncatedBytes } : { truncatedBytes, reason: problem }
  }
}

function sliceBuffers(buffers: readonly Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = []
  for (const b of buffers) {
    if (skip >= b.length) skip -= b.length
    else {
      out.push(skip > 0 ? b.subarray(skip) : b)
      skip = 0
    }
  }
  return out
}

/** Index of the last element <= value, or -1. */
function lastAtMost(sorted: readonly number[], value: number): number {
  let lo = 0
  let hi = sorted.length - 1
  let found = -1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    if (sorted[mid]! <= value) {
      found = mid
      lo = mid + 1
    } else hi = mid - 1
  }
  return found
}

/** Index of the last element < value, or -1. */
function lastBelow(sorted: readonly number[], value: number): number {
  let lo = 0
  let hi = sorted.length - 1
  let found = -1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    if (sorted[mid]! < value) {
      found = mid
      lo = mid + 1
    } else hi = mid - 1
  }
  return found
}
