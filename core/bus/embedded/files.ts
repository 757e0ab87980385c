// The file layer of the embedded log: the few file operations segments, indexes and offset files
// use. node:fs/promises is the implementation; the port exists so that a write, sync or truncate
// that fails (a full disk, an I/O error) can be produced on demand and its handling tested.
import { open, rename, unlink } from 'node:fs/promises'

export interface LogFile {
  writev(buffers: Buffer[], position: number): Promise<{ bytesWritten: number }>
  writeFile(data: Buffer | string): Promise<void>
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>
  datasync(): Promise<void>
  /** fsync: on a directory, makes the names created or renamed in it durable. */
  sync(): Promise<void>
  truncate(length: number): Promise<void>
  stat(): Promise<{ size: number }>
  close(): Promise<void>
}

export interface LogFiles {
  /** 'wx+' creates a new file, 'r+' opens one, 'w' replaces one, 'r' reads (directories too). */
  open(path: string, flags: 'wx+' | 'r+' | 'w' | 'r'): Promise<LogFile>
  rename(from: string, to: string): Promise<void>
  unlink(path: string): Promise<void>
}

export const nodeFiles: LogFiles = { open, rename, unlink }

/** fsyncs a directory so that files created, renamed or removed in it survive a power cut. */
export async function syncDirectory(files: LogFiles, dir: string): Promise<void> {
  const handle = await files.open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** Writes a whole small file durably: a temp file, fsync'd, renamed over the old one, dir fsync'd. */
export async function replaceFile(
  files: LogFiles,
  dir: string,
  path: string,
  data: Buffer | string,
): Promise<void> {
  const temp = `${path}.tmp`
  const file = await files.open(temp, 'w')
  try {
    await file.writeFile(data)
    await file.datasync()
  } finally {
    await file.close()
  }
  await files.rename(temp, path)
  await syncDirectory(files, dir)
}
