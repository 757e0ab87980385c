// The scale-out registry: PostgreSQL through a `pg` pool, behind the shared SQL store. An optional
// schema keeps the registry's tables apart (tests use a throwaway schema per run).
import pg from 'pg'
import { TributaryError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { SqlClient, SqlDatabase } from './sql/client.ts'
import { MIGRATION_LOCK } from './sql/migrate.ts'
import { read } from './sql/write.ts'
import { createSqlStore } from './sql-store.ts'
import type { RegistryStore } from './store.ts'

export interface PostgresStoreOptions {
  /** `postgres://user:pass@host:5432/db`. */
  readonly url: string
  readonly log: Logger
  /** Pool size (default 10). */
  readonly maxConnections?: number | undefined
  /** Schema for the registry's tables, created when missing (default: the server's search_path). */
  readonly schema?: string | undefined
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/
// Bounds on every wait: connecting, and any one statement (which includes waiting for a lock).
const CONNECT_TIMEOUT_MS = 5_000
const STATEMENT_TIMEOUT_MS = 30_000

function clientOf(target: pg.Pool | pg.PoolClient): SqlClient {
  return {
    query: async <T>(sql: string, params: readonly unknown[] = []) => {
      const result = await target.query(sql, [...params])
      return { rows: result.rows as T[] }
    },
    exec: async (sql: string) => {
      await target.query(sql) // without parameters `pg` uses the simple protocol: many statements
    },
  }
}

/** Where the store connects, for logs: never the password. */
function describe(url: string): string {
  try {
    const parsed = new URL(url)
    return `${parsed.hostname}:${parsed.port || '5432'}${parsed.pathname}`
  } catch {
    return '(unparsable URL)'
  }
}

export async function createPostgresStore(options: PostgresStoreOptions): Promise<RegistryStore> {
  const { log, schema } = options
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
    throw new TributaryError(
      'REGISTRY_INVALID',
      `schema ${JSON.stringify(schema)} is not a plain lowercase SQL name`,
    )
  }
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    application_name: 'tributary-registry',
    ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
  })
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', (err) => log.warn({ err: { message: err.message } }, 'registry database connection lost'))

  const db: SqlDatabase = {
    ...clientOf(pool),
    transaction: async (fn) => {
      const client = await pool.connect()
      let broken: Error | undefined
      // A checked-out client has no listener of the pool's: a connection lost mid-transaction would
      // be an unhandled 'error' event that ends the process. It fails the transaction's query
      // instead, and the client is dropped from the pool on release.
      const lost = (err: Error): void => {
        broken = err
        log.warn({ err: { message: err.message } }, 'registry database connection lost in a transaction')
      }
      client.on('error', lost)
      try {
        await client.query('BEGIN')
        const result = await fn(clientOf(client))
        await client.query('COMMIT')
        return result
      } catch (err) {
        // A failed ROLLBACK leaves the connection in an unknown state: drop it from the pool.
        await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
          broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr))
        })
        throw err
      } finally {
        client.off('error', lost)
        client.release(broken)
      }
    },
    close: () => pool.end(),
  }

  const started = performance.now()
  if (schema !== undefined) {
    // Under the migration lock, so that processes starting together do not race to create it.
    await read(() =>
      db.transaction(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
        await tx.exec(`CREATE SCHEMA IF NOT EXISTS "${schema}"`)
      }),
    ).catch(async (err: unknown) => {
      await pool.end().catch(() => {})
      throw err
    })
  }
  const store = await createSqlStore({ kind: 'postgres', db, log })
  log.info(
    { database: describe(options.url), schema, ms: Math.round(performance.now() - started) },
    'registry database open (PostgreSQL)',
  )
  return store
}
