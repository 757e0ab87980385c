// PGlite (or one of its transactions) seen through the SQL client seam the registry store uses.
import type { PGlite, Transaction } from '@electric-sql/pglite'
import type { SqlClient, SqlDatabase } from './sql/client.ts'

export function clientOf(target: PGlite | Transaction): SqlClient {
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

/** The database seam over one PGlite instance; `close` closes it (and runs `after`, if given). */
export function databaseOf(pglite: PGlite, after?: () => Promise<void>): SqlDatabase {
  return {
    ...clientOf(pglite),
    transaction: (fn) => pglite.transaction((tx) => fn(clientOf(tx))),
    close: async () => {
      try {
        await pglite.close()
      } finally {
        await after?.()
      }
    },
  }
}
