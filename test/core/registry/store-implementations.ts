// The RegistryStore implementations the contract suite runs against, each on fresh storage: a
// new temp dir for PGlite, a new throwaway schema for PostgreSQL (dropped afterwards).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { inject } from 'vitest'
import { silentLogger } from '../../../core/log.ts'
import { createPgliteStore } from '../../../core/registry/pglite.ts'
import { TEST_CACHE_DIR } from '../../helpers/cache.ts'
import { createPostgresStore } from '../../../core/registry/postgres.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'

export interface Engine {
  readonly name: RegistryStore['kind']
  /** Opens a store on this engine's storage (again, after close, to test persistence). */
  open(): Promise<RegistryStore>
  /** Runs one SQL statement directly against the storage (for checks the port does not offer). */
  sql<T>(statement: string): Promise<T[]>
  /** Removes the storage. */
  destroy(): Promise<void>
}

export function pgliteEngine(): Engine {
  const dataDir = mkdtempSync(join(tmpdir(), 'tributary-registry-'))
  return {
    name: 'pglite',
    open: () => createPgliteStore({ dataDir, cacheDir: TEST_CACHE_DIR, log: silentLogger }),
    sql: async <T>(statement: string) => {
      // PGlite has one owner at a time: callers close their store first.
      const { PGlite } = await import('@electric-sql/pglite')
      const db = await PGlite.create({ dataDir: join(dataDir, 'registry') })
      try {
        return (await db.query<T>(statement)).rows
      } finally {
        await db.close()
      }
    },
    destroy: async () => rmSync(dataDir, { recursive: true, force: true }),
  }
}

export const randomSchema = (): string =>
  `reg_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`

export function postgresEngine(url: string, schema: string = randomSchema()): Engine {
  const admin = async <T>(statement: string): Promise<T[]> => {
    const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` })
    await client.connect()
    try {
      return (await client.query(statement)).rows as T[]
    } finally {
      await client.end()
    }
  }
  return {
    name: 'postgres',
    open: () => createPostgresStore({ url, log: silentLogger, schema, maxConnections: 5 }),
    sql: admin,
    destroy: async () => {
      await admin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    },
  }
}

/** Both engines, for `describe.each`: every store suite runs on PGlite and on PostgreSQL. */
export function storeEngines(): Array<{ name: RegistryStore['kind']; make: () => Engine }> {
  return [
    { name: 'pglite', make: () => pgliteEngine() },
    { name: 'postgres', make: () => postgresEngine(inject('databaseUrl')) },
  ]
}
