// File metadata lookups through the cluster state (docs/files.md#metadata-cache): an uploaded file
// and where it is published, kept as a shared value (Redis when configured, else in the process) for
// a short time. Writes go through: each publish, unpublish or delete made here rewrites or forgets
// the entry after the registry committed, so every process reads the change at once. Anything that
// changes a file elsewhere (its device or tenant deleted) is seen once its entry lapses.
import type { ClusterState } from '../cluster/cluster.ts'
import type { Logger } from '../log.ts'
import type { Registry } from '../metrics.ts'
import { Counter } from '../metrics.ts'
import type { FilePublications, FileRecord, FileStore, PublicationTarget } from '../registry/files.ts'

/** An uploaded file and where it is published. */
export interface FileEntry {
  readonly file: FileRecord
  readonly publications: FilePublications
}

export interface FileLookups {
  /** The tenant's uploaded file `id` with its publications; undefined when there is none. */
  lookup(tenant: string, id: string): Promise<FileEntry | undefined>
  publish(tenant: string, id: string, target: PublicationTarget, at: Date): Promise<boolean>
  unpublish(tenant: string, id: string, target: PublicationTarget): Promise<boolean>
  /** Forgets an uploaded file (FileStore.remove) and returns it; the caller deletes its object. */
  remove(tenant: string, id: string): Promise<FileRecord | undefined>
}

export interface FileLookupsOptions {
  readonly store: Pick<FileStore, 'get' | 'publications' | 'publish' | 'unpublish' | 'remove'>
  /** Undefined: every lookup reads the registry. */
  readonly cluster: Pick<ClusterState, 'getValue' | 'setValue' | 'deleteValue'> | undefined
  readonly ttlMs: number
  readonly metrics: Registry | undefined
  readonly log: Logger
}

/** The shared value's key; tenant and file ids hold none of its separators. */
export const fileCacheKey = (tenant: string, id: string): string => `file:${tenant}/${id}`

interface Stored {
  readonly file: Omit<FileRecord, 'createdAt' | 'uploadedAt' | 'expiresAt'> & {
    readonly createdAt: string
    readonly uploadedAt: string | null
  }
  readonly publications: FilePublications
}

const encode = ({ file, publications }: FileEntry): string => {
  const stored: Stored = {
    file: {
      tenant: file.tenant,
      id: file.id,
      device: file.device,
      name: file.name,
      size: file.size,
      sha256: file.sha256,
      contentType: file.contentType,
      state: file.state,
      createdAt: file.createdAt.toISOString(),
      uploadedAt: file.uploadedAt?.toISOString() ?? null,
    },
    publications,
  }
  return JSON.stringify(stored)
}

const decode = (value: string): FileEntry => {
  const { file, publications } = JSON.parse(value) as Stored
  return {
    file: {
      ...file,
      sha256: file.sha256 ?? undefined,
      createdAt: new Date(file.createdAt),
      uploadedAt: file.uploadedAt === null ? undefined : new Date(file.uploadedAt),
      expiresAt: undefined,
    },
    publications,
  }
}

export function createFileLookups(options: FileLookupsOptions): FileLookups {
  const { store, cluster, log } = options
  const lookups =
    options.metrics === undefined
      ? undefined
      : new Counter({
          name: 'tributary_file_cache_lookups_total',
          help: 'File metadata lookups, by whether the cluster state had them (hit) or the registry was read (miss).',
          labelNames: ['result'],
          registers: [options.metrics],
        })

  async function fromStore(tenant: string, id: string): Promise<FileEntry | undefined> {
    const file = await store.get(tenant, id)
    if (file === undefined || file.state !== 'uploaded') return undefined
    return { file, publications: await store.publications(tenant, id) }
  }

  /** Writes the registry's entry through (or forgets it); a cluster state that fails is logged. */
  async function refresh(tenant: string, id: string): Promise<void> {
    if (cluster === undefined) return
    const key = fileCacheKey(tenant, id)
    try {
      const entry = await fromStore(tenant, id)
      if (entry === undefined) await cluster.deleteValue(key)
      else await cluster.setValue(key, encode(entry), options.ttlMs)
    } catch (err) {
      // The entry may be stale until it lapses (ttlMs).
      log.warn({ err, tenant, file: id }, 'file cache entry not rewritten')
    }
  }

  return {
    async lookup(tenant, id) {
      if (cluster === undefined) return fromStore(tenant, id)
      const key = fileCacheKey(tenant, id)
      let cached: string | undefined
      try {
        cached = await cluster.getValue(key)
      } catch (err) {
        log.warn({ err, tenant, file: id }, 'file cache unavailable; reading the registry')
      }
      if (cached !== undefined) {
        lookups?.inc({ result: 'hit' })
        return decode(cached)
      }
      lookups?.inc({ result: 'miss' })
      const entry = await fromStore(tenant, id)
      // Only files that exist are kept: a pending upload may be done a moment later.
      if (entry !== undefined) {
        await cluster.setValue(key, encode(entry), options.ttlMs).catch((err: unknown) => {
          log.warn({ err, tenant, file: id }, 'file cache entry not written')
        })
      }
      return entry
    },

    async publish(tenant, id, target, at) {
      const added = await store.publish(tenant, id, target, at)
      await refresh(tenant, id)
      return added
    },

    async unpublish(tenant, id, target) {
      const removed = await store.unpublish(tenant, id, target)
      await refresh(tenant, id)
      return removed
    },

    async remove(tenant, id) {
      const file = await store.remove(tenant, id)
      await refresh(tenant, id)
      return file
    },
  }
}
