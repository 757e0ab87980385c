// The one RegistryStore implementation: the shared SQL statements of sql/ over whichever engine's
// client it is given (PGlite or a `pg` pool), after bringing the schema up to date.
import type { Logger } from '../log.ts'
import type { SqlDatabase } from './sql/client.ts'
import { apiTokenStatements } from './sql/api-tokens.ts'
import { configStatements } from './sql/configs.ts'
import { configRuleStatements } from './sql/config-rules.ts'
import { configStateStatements } from './sql/config-state.ts'
import { configFanoutStatements } from './sql/config-fanout.ts'
import { credentialStatements } from './sql/credentials.ts'
import { deadLetterStatements } from './sql/dead-letters.ts'
import { deviceStatements } from './sql/devices.ts'
import { migrate } from './sql/migrate.ts'
import { read } from './sql/write.ts'
import { outboxStatements } from './sql/outbox.ts'
import { routeTableStatements } from './sql/routes.ts'
import { channelSchemaStatements } from './sql/schemas.ts'
import { subscriptionStatements } from './sql/subscriptions.ts'
import { tenantStatements } from './sql/tenants.ts'
import { tombstoneStatements } from './sql/tombstones.ts'
import { webhookErrorStatements } from './sql/webhook-errors.ts'
import { commandQueueStatements } from './sql/command-queue.ts'
import { webhookStatsStatements } from './sql/webhook-stats.ts'
import { fileStatements } from './sql/files.ts'
import type { RegistryStore } from './store.ts'

export interface SqlStoreOptions {
  readonly kind: RegistryStore['kind']
  readonly db: SqlDatabase
  readonly log: Logger
}

/** Migrates the database, then serves the port; closes the database if migrating fails. */
export async function createSqlStore(options: SqlStoreOptions): Promise<RegistryStore> {
  const { db, kind, log } = options
  try {
    await read(() => migrate(db, log))
  } catch (err) {
    await db
      .close()
      .catch((closeErr: unknown) => log.warn({ err: closeErr }, 'closing the registry database failed'))
    throw err
  }
  let closed: Promise<void> | undefined
  return {
    kind,
    ...tenantStatements(db),
    ...deviceStatements(db),
    ...credentialStatements(db),
    ...apiTokenStatements(db),
    ...channelSchemaStatements(db),
    ...routeTableStatements(db),
    ...configStatements(db),
    ...configRuleStatements(db),
    ...configStateStatements(db),
    ...configFanoutStatements(db),
    ...subscriptionStatements(db),
    ...tombstoneStatements(db),
    ...deadLetterStatements(db),
    ...webhookErrorStatements(db),
    ...webhookStatsStatements(db),
    ...outboxStatements(db),
    commands: commandQueueStatements(db),
    files: fileStatements(db),
    close: () => (closed ??= db.close()),
  }
}
