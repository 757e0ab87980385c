// Brings a registry database up to the newest schema: each pending migration in its own
// transaction, recorded in schema_migrations, under an advisory lock so that processes starting
// together neither apply one twice nor fail on each other.
import type { Logger } from '../../log.ts'
import type { SqlClient, SqlDatabase } from './client.ts'
import type { Migration } from './migrations.ts'
import { migrations as registryMigrations } from './migrations.ts'

/** Advisory lock key of registry migrations (any constant; it only has to be the same everywhere). */
export const MIGRATION_LOCK = 7_151_227_301

async function lockAndEnsureTable(tx: SqlClient): Promise<void> {
  // A transaction-scoped lock: released by COMMIT or ROLLBACK, never left behind by a crash.
  await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
  await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`)
}

/** Applies what is missing and returns the versions it applied (empty when up to date). */
export async function migrate(
  db: SqlDatabase,
  log: Logger,
  migrations: readonly Migration[] = registryMigrations,
): Promise<number[]> {
  const applied: number[] = []
  for (const migration of migrations) {
    const ran = await db.transaction(async (tx) => {
      await lockAndEnsureTable(tx)
      // Checked under the lock: another process may have applied it while we waited.
      const done = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [migration.version])
      if (done.rows.length > 0) return false
      await tx.exec(migration.sql)
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ])
      return true
    })
    if (ran) {
      applied.push(migration.version)
      log.info({ version: migration.version, name: migration.name }, 'registry migration applied')
    }
  }
  const newest = await db.query<{ version: number | null }>(
    'SELECT max(version) AS version FROM schema_migrations',
  )
  const known = migrations.at(-1)?.version ?? 0
  const found = newest.rows[0]?.version ?? 0
  if (found > known) {
    // A newer Tributary migrated this database; running older code against it may misbehave.
    log.warn(
      { found, known },
      'the registry database has a newer schema than this version of Tributary knows',
    )
  }
  return applied
}
