// The embedded blob store: one file per object under <data dir>/blobs/objects/<tenant>/<device>/<id>.
// A put streams into blobs/tmp, fsyncs, renames into place and fsyncs the folder, so an object is
// either whole or absent after a crash; leftovers in tmp are removed at the next start.
import { randomUUID } from 'node:crypto'
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { pipeline } from 'node:stream/promises'
import { TributaryError } from '../errors.ts'
import {
  DEFAULT_LIST_LIMIT,
  MAX_LIST_LIMIT,
  type BlobInfo,
  type BlobListPage,
  type BlobPut,
  type BlobStore,
} from './blobs.ts'
import { assertKey, assertPrefix } from './keys.ts'
import { createVerifier } from './verify.ts'

export interface FilesystemBlobOptions {
  /** The process data dir; objects live in its `blobs` folder. */
  readonly dataDir: string
}

const isMissing = (err: unknown): boolean =>
  (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT' ||
  (err as NodeJS.ErrnoException | undefined)?.code === 'ENOTDIR'

async function syncFolder(path: string): Promise<void> {
  const handle = await open(path, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

export async function createFilesystemBlobStore(options: FilesystemBlobOptions): Promise<BlobStore> {
  const root = join(options.dataDir, 'blobs')
  const objects = join(root, 'objects')
  const tmp = join(root, 'tmp')
  await rm(tmp, { recursive: true, force: true })
  await mkdir(tmp, { recursive: true })
  await mkdir(objects, { recursive: true })

  const pathOf = (key: string): string => join(objects, ...assertKey(key))

  async function put(input: BlobPut): Promise<BlobInfo & { sha256: string }> {
    // The source may fail while the temp file opens; pipeline() below finds its stored error.
    input.body.on('error', () => undefined)
    const path = pathOf(input.key)
    const verifier = createVerifier(input.size, input.sha256)
    const temp = join(tmp, randomUUID())
    const handle = await open(temp, 'wx')
    try {
      // flush: the file is fsync'd before the stream closes.
      const file = handle.createWriteStream({ flush: true })
      await pipeline(input.body, verifier, file, input.signal === undefined ? {} : { signal: input.signal })
      const folder = join(path, '..')
      await mkdir(folder, { recursive: true })
      await rename(temp, path)
      await syncFolder(folder)
    } catch (err) {
      await handle.close().catch(() => undefined)
      await rm(temp, { force: true })
      throw err
    }
    const stats = await stat(path)
    return { key: input.key, size: stats.size, sha256: verifier.sha256, modified: stats.mtime }
  }

  async function head(key: string): Promise<BlobInfo | undefined> {
    const path = pathOf(key)
    try {
      const stats = await stat(path)
      return stats.isFile() ? { key, size: stats.size, modified: stats.mtime } : undefined
    } catch (err) {
      if (isMissing(err)) return undefined
      throw err
    }
  }

  async function names(path: string): Promise<string[]> {
    try {
      return await readdir(path)
    } catch (err) {
      if (isMissing(err)) return []
      throw err
    }
  }

  async function list(
    prefix: string,
    listOptions: { after?: string | undefined; limit?: number | undefined } = {},
  ): Promise<BlobListPage> {
    const segments = assertPrefix(prefix)
    const limit = listOptions.limit ?? DEFAULT_LIST_LIMIT
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new TributaryError('BLOB_INVALID_KEY', `limit must be an integer from 1 to ${MAX_LIST_LIMIT}`)
    }
    const devices = segments.length === 2 ? [segments[1]!] : await names(join(objects, segments[0]!))
    const keys: string[] = []
    for (const device of devices) {
      for (const id of await names(join(objects, segments[0]!, device)))
        keys.push(`${segments[0]}/${device}/${id}`)
    }
    // Bytewise order, as S3 lists.
    keys.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    const after = listOptions.after
    const from =
      after === undefined
        ? keys
        : keys.filter((key) => Buffer.compare(Buffer.from(key), Buffer.from(after)) > 0)
    const items: BlobInfo[] = []
    let read = 0
    while (read < from.length && items.length < limit) {
      const info = await head(from[read++]!)
      if (info !== undefined) items.push(info) // else deleted since readdir
    }
    const last = items.at(-1)
    return { items, next: read < from.length && last !== undefined ? last.key : undefined }
  }

  return {
    kind: 'filesystem',
    put,
    async get(key) {
      const path = pathOf(key)
      let handle
      try {
        handle = await open(path, 'r')
      } catch (err) {
        if (isMissing(err)) return undefined
        throw err
      }
      const stats = await handle.stat()
      return { info: { key, size: stats.size, modified: stats.mtime }, body: handle.createReadStream() }
    },
    head,
    async delete(key) {
      try {
        await unlink(pathOf(key))
      } catch (err) {
        if (!isMissing(err)) throw err
      }
    },
    list,
    location: (key) => pathToFileURL(resolve(pathOf(key))).href,
    presign: undefined,
    async health() {
      try {
        await stat(objects)
        return { ok: true }
      } catch (err) {
        return { ok: false, reason: `blob folder ${objects}: ${(err as Error).message}` }
      }
    },
    async close() {},
  }
}
