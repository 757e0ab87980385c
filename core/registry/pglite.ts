// The embedded registry: PGlite (PostgreSQL in WebAssembly) persisted in `<data dir>/registry`, or
// in memory for tests, behind the shared SQL store. One process owns the directory at a time.
import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { existsSync } from 'node:fs'
import { PGlite } from '@electric-sql/pglite'
import type { PGliteOptions } from '@electric-sql/pglite'
import { TributaryError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { acquirePidLock } from '../pid-lock.ts'
import { databaseOf } from './pglite-client.ts'
import { copyTemplate, registryTemplate, templateDump } from './pglite-template.ts'
import { createSqlStore } from './sql-store.ts'
import type { RegistryStore } from './store.ts'

export interface PgliteStoreOptions {
  /** The Tributary data dir; the database lives in `<dataDir>/registry`. Undefined: in memory. */
  readonly dataDir?: string | undefined
  /**
   * Where ready-made empty registries are kept (see pglite-template.ts): a new registry starts as a
   * copy instead of running initdb. Undefined: every new registry is built from scratch.
   */
  readonly cacheDir?: string | undefined
  readonly log: Logger
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

/** How to open: the existing directory, a new one copied from the template, or the template in memory. */
async function startFrom(
  path: string | undefined,
  cacheDir: string | undefined,
  log: Logger,
): Promise<PGliteOptions> {
  const fresh = path === undefined || !existsSync(join(path, 'PG_VERSION'))
  if (fresh && cacheDir !== undefined) {
    try {
      const template = await registryTemplate(cacheDir, log)
      if (path === undefined) return { loadDataDir: await templateDump(template) }
      await copyTemplate(template, path)
    } catch (err) {
      // A template is only a shortcut: without one, initdb builds the registry as before.
      log.warn({ err, cacheDir }, 'registry template unavailable; creating the registry from scratch')
    }
  }
  return path === undefined ? {} : { dataDir: path }
}

async function openPglite(
  path: string | undefined,
  cacheDir: string | undefined,
  log: Logger,
): Promise<PGlite> {
  try {
    return await PGlite.create(await startFrom(path, cacheDir, log))
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
    pglite = await openPglite(path, options.cacheDir, log)
  } catch (err) {
    await unlock()
    throw err
  }
  const db = databaseOf(pglite, unlock)
  const store = await createSqlStore({ kind: 'pglite', db, log })
  log.info(
    { path: path ?? 'memory', ms: Math.round(performance.now() - started) },
    'registry database open (PGlite)',
  )
  return store
}
