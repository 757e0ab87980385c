// The embedded registry: PGlite (PostgreSQL in WebAssembly) persisted in `<data dir>/registry`, or
// in memory for tests, behind the shared SQL store. One process owns the directory at a time.
import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import type { Transaction } from '@electric-sql/pglite'
import { TributaryError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { acquirePidLock } from '../pid-lock.ts'
import type { SqlClient, SqlDatabase } from './sql/client.ts'
import { createSqlStore } from './sql-store.ts'
import type { RegistryStore } from './store.ts'

export interface PgliteStoreOptions {
  /** The Tributary data dir; the database lives in `<dataDir>/registry`. Undefined: in memory. */
  readonly dataDir?: string | undefined
  readonly log: Logger
}

function clientOf(target: PGlite | Transaction): SqlClient {
  return {
    query: async <T>(sql: string, params: readonly unknown[] = []) => {
      const result = await target.query<T>(sql, [...params])
      return { rows: result.rows }
    },
    exec: async (sql: string) => {
      await target.exec(sql)
    },
  }
}

/** PGlite itself does not stop two processes from opening one directory, so a pid file does. */
const lockDirectory = (path: string): Promise<() => Promise<void>> =>
  acquirePidLock(
    `${path}.lock`,
    (owner) =>
      new TributaryError(
        'REGISTRY_DATA_DIR_LOCKED',
        `the registry database at ${path} is in use by ${owner}; stop it or set another TRIBUTARY_DATA_DIR`,
      ),
  )

/** A file system error (permissions, a full disk) on the directory, named with the directory. */
function directoryError(path: string, err: unknown): unknown {
  if (err instanceof TributaryError) return err
  const reason = err instanceof Error ? err.message : String(err)
  return new TributaryError('REGISTRY_UNAVAILABLE', `cannot use the registry directory ${path}: ${reason}`, {
    cause: err,
  })
}

async function openPglite(path: string | undefined): Promise<PGlite> {
  try {
    return await PGlite.create(path === undefined ? {} : { dataDir: path })
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    if (typeof (err as NodeJS.ErrnoException).code === 'string' && path !== undefined) {
      throw directoryError(path, err)
    }
    throw new TributaryError(
      'REGISTRY_CORRUPT',
      path === undefined
        ? `the in-memory registry database did not start: ${reason}`
        : `the registry database at ${path} cannot be opened (${reason}); it is damaged or was written by ` +
            'another PGlite version: restore it from a backup, or move it away to start with an empty registry',
      { cause: err },
    )
  }
}

export async function createPgliteStore(options: PgliteStoreOptions): Promise<RegistryStore> {
  const { log } = options
  const path = options.dataDir === undefined ? undefined : resolve(join(options.dataDir, 'registry'))
  let unlock = async (): Promise<void> => {}
  if (path !== undefined) {
    try {
      await mkdir(path, { recursive: true })
      unlock = await lockDirectory(path)
    } catch (err) {
      throw directoryError(path, err)
    }
  }
  const started = performance.now()
  let pglite: PGlite
  try {
    pglite = await openPglite(path)
  } catch (err) {
    await unlock()
    throw err
  }
  const db: SqlDatabase = {
    ...clientOf(pglite),
    transaction: (fn) => pglite.transaction((tx) => fn(clientOf(tx))),
    close: async () => {
      try {
        await pglite.close()
      } finally {
        await unlock()
      }
    },
  }
  const store = await createSqlStore({ kind: 'pglite', db, log })
  log.info(
    { path: path ?? 'memory', ms: Math.round(performance.now() - started) },
    'registry database open (PGlite)',
  )
  return store
}
