// Picks the registry database from configuration: PostgreSQL when a URL is set, else PGlite in
// the data dir. Each engine's module loads only when chosen.
import type { Logger } from '../log.ts'
import type { RegistryStore } from './store.ts'

export interface RegistryStoreConfig {
  readonly dataDir: string
  /** TRIBUTARY_DATABASE_URL; undefined: the embedded PGlite database. */
  readonly databaseUrl: string | undefined
  /** Where PGlite registry templates are kept; undefined: none. */
  readonly cacheDir?: string | undefined
}

export async function createRegistryStore(config: RegistryStoreConfig, log: Logger): Promise<RegistryStore> {
  if (config.databaseUrl !== undefined && config.databaseUrl !== '') {
    const { createPostgresStore } = await import('./postgres.ts')
    return createPostgresStore({ url: config.databaseUrl, log })
  }
  const { createPgliteStore } = await import('./pglite.ts')
  return createPgliteStore({ dataDir: config.dataDir, cacheDir: config.cacheDir, log })
}
