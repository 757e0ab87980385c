// A PostgreSQL database of the test's own on the shared server, which the test can take away from
// everyone connected to it (ALLOW_CONNECTIONS false: new connections fail with SQLSTATE 55000, the
// open ones are ended) and give back, and which it drops at the end. Nothing else on the server
// is touched.
import pg from 'pg'

export interface TestDatabase {
  readonly name: string
  /** The server URL with this database's name. */
  readonly url: string
  /** Refuses new connections (55000) and ends the open ones (57P01). */
  takeAway(): Promise<void>
  giveBack(): Promise<void>
  drop(): Promise<void>
}

async function adminQuery(serverUrl: string, sql: string, params: unknown[] = []): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl })
  await client.connect()
  try {
    await client.query(sql, params)
  } finally {
    await client.end()
  }
}

/** Creates a database named `<prefix>_<random>` through `serverUrl` (any database of the server). */
export async function createTestDatabase(serverUrl: string, prefix: string): Promise<TestDatabase> {
  const name = `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain database name: ${name}`)
  await adminQuery(serverUrl, `CREATE DATABASE ${name}`)
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return {
    name,
    url: url.toString(),
    async takeAway() {
      await adminQuery(serverUrl, `ALTER DATABASE ${name} ALLOW_CONNECTIONS false`)
      await adminQuery(
        serverUrl,
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [name],
      )
    },
    giveBack: () => adminQuery(serverUrl, `ALTER DATABASE ${name} ALLOW_CONNECTIONS true`),
    drop: () => adminQuery(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  }
}
