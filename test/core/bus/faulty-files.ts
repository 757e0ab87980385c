// The embedded log's file layer with failures on demand: the real node:fs underneath, and writes,
// syncs or whole file creations that fail the way a full disk fails them (ENOSPC), optionally after
// writing part of the data, so the log's handling of a failed write can be driven step by step.
import type { LogFile, LogFiles } from '../../../core/bus/embedded/files.ts'
import { nodeFiles } from '../../../core/bus/embedded/files.ts'

export interface FaultyFiles extends LogFiles {
  /** The next `count` writes to segment files fail; `partial` writes half of the data first. */
  failWrites(count: number, options?: { partial?: boolean }): void
  /** The next `count` fdatasyncs of segment files fail (the data was written). */
  failSyncs(count: number): void
  /** The next `count` file creations (a new segment, an index or offsets temp file) fail. */
  failCreates(count: number): void
  /** Every write, sync and file creation fails until heal(): a full disk. */
  fill(): void
  heal(): void
  /** How many operations failed so far. */
  readonly failures: number
}

const noSpace = (syscall: string): NodeJS.ErrnoException =>
  Object.assign(new Error(`ENOSPC: no space left on device, ${syscall}`), {
    code: 'ENOSPC',
    errno: -28,
    syscall,
  })

export function createFaultyFiles(): FaultyFiles {
  let writes = 0
  let partial = false
  let syncs = 0
  let creates = 0
  let full = false
  let failures = 0
  const fail = (syscall: string): never => {
    failures++
    throw noSpace(syscall)
  }
  const isSegment = (path: string): boolean => path.endsWith('.log')

  const wrap = (path: string, file: LogFile): LogFile => ({
    async writev(buffers, position) {
      if (full || (isSegment(path) && writes > 0)) {
        if (!full) writes--
        if (partial || full) {
          // Some bytes reach the file before the error, as when a disk fills mid-write.
          const whole = Buffer.concat(buffers)
          await file.writev([whole.subarray(0, Math.max(1, whole.length >> 1))], position)
        }
        fail('write')
      }
      return file.writev(buffers, position)
    },
    async writeFile(data) {
      if (full) fail('write')
      return file.writeFile(data)
    },
    read: (buffer, offset, length, position) => file.read(buffer, offset, length, position),
    async datasync() {
      if (full || (isSegment(path) && syncs > 0)) {
        if (!full) syncs--
        fail('fdatasync')
      }
      return file.datasync()
    },
    sync: () => file.sync(),
    truncate: (length) => file.truncate(length),
    stat: () => file.stat(),
    close: () => file.close(),
  })

  return {
    async open(path, flags) {
      if ((full || creates > 0) && (flags === 'wx+' || flags === 'w')) {
        if (!full) creates--
        fail('open')
      }
      return wrap(path, await nodeFiles.open(path, flags))
    },
    async rename(from, to) {
      return nodeFiles.rename(from, to)
    },
    unlink: (path) => nodeFiles.unlink(path),
    failWrites(count, options = {}) {
      writes = count
      partial = options.partial ?? false
    },
    failSyncs(count) {
      syncs = count
    },
    failCreates(count) {
      creates = count
    },
    fill() {
      full = true
    },
    heal() {
      full = false
      writes = 0
      syncs = 0
      creates = 0
    },
    get failures() {
      return failures
    },
  }
}
