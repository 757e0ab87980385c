// What differs between the registry engines: PGlite's ownership of its directory and damaged
// directories, PostgreSQL's unreachable servers and concurrent starters, and the factory's choice.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { silentLogger } from '../../../core/log.ts'
import { createPgliteStore } from '../../../core/registry/pglite.ts'
import { createPostgresStore } from '../../../core/registry/postgres.ts'
import { migrations } from '../../../core/registry/sql/migrations.ts'
import { createRegistryStore } from '../../../core/registry/store-factory.ts'
import { postgresEngine, randomSchema } from './store-implementations.ts'
import { deviceSpec, failsWith, password, tenantId, tenantSpec } from './store-fixtures.ts'

/** Every migration applied exactly once. */
const ALL_VERSIONS = migrations.map((m) => ({ version: m.version }))

const dirs: string[] = []
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-registry-'))
  dirs.push(dir)
  return dir
}

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

describe('PGlite registry store', () => {
  it('refuses a second owner of its directory, in this process or another live one', async () => {
    const dataDir = tempDir()
    const store = await createPgliteStore({ dataDir, log: silentLogger })
    try {
      const err = await failsWith(
        createPgliteStore({ dataDir, log: silentLogger }),
        'REGISTRY_DATA_DIR_LOCKED',
      )
      expect(err.message).toContain(join(dataDir, 'registry'))
    } finally {
      await store.close()
    }
    // The lock file of a process that is alive (our parent stands in for another Tributary).
    writeFileSync(join(dataDir, 'registry.lock'), String(process.ppid))
    const err = await failsWith(createPgliteStore({ dataDir, log: silentLogger }), 'REGISTRY_DATA_DIR_LOCKED')
    expect(err.message).toContain(`process ${process.ppid}`)
  })

  it('takes over the lock of a process that is gone, and releases it on close', async () => {
    const dataDir = tempDir()
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    })
    writeFileSync(join(dataDir, 'registry.lock'), gone.stdout)
    const store = await createPgliteStore({ dataDir, log: silentLogger })
    await store.createTenant(tenantId(), tenantSpec())
    await store.close()
    expect(existsSync(join(dataDir, 'registry.lock'))).toBe(false)
  })

  it('reports a damaged directory clearly and lets go of it', async () => {
    const dataDir = tempDir()
    mkdirSync(join(dataDir, 'registry'))
    writeFileSync(join(dataDir, 'registry', 'PG_VERSION'), 'not a version\n')
    const err = await failsWith(createPgliteStore({ dataDir, log: silentLogger }), 'REGISTRY_CORRUPT')
    expect(err.message).toContain(join(dataDir, 'registry'))
    expect(err.message).toMatch(/backup|move it away/)
    expect(existsSync(join(dataDir, 'registry.lock'))).toBe(false)
  })

  it('runs in memory without a data dir', async () => {
    const store = await createPgliteStore({ log: silentLogger })
    try {
      const tenant = tenantId()
      await store.createTenant(tenant, tenantSpec())
      await store.createDevice(tenant, 'd1', deviceSpec())
      expect(await store.findPassword(tenant, 'd1')).toBeUndefined()
      await store.createCredential(password(tenant, 'd1'))
      expect((await store.findPassword(tenant, 'd1'))?.type).toBe('password')
    } finally {
      await store.close()
    }
  })
})

describe('PostgreSQL registry store', () => {
  const url = inject('databaseUrl')

  it('fails with REGISTRY_UNAVAILABLE, retryable and with its cause, when nothing answers', async () => {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    await new Promise((resolve) => server.close(resolve))
    const err = await failsWith(
      createPostgresStore({ url: `postgres://postgres@127.0.0.1:${port}/test`, log: silentLogger }),
      'REGISTRY_UNAVAILABLE',
    )
    expect(err.canRetry).toBe(true)
    expect(err.status).toBe(503)
    expect(err.cause).toBeDefined()
  })

  it('migrates once when several processes start together on a fresh schema', async () => {
    const engine = postgresEngine(url)
    try {
      const stores = await Promise.all([engine.open(), engine.open(), engine.open()])
      const tenant = tenantId()
      await stores[0]?.createTenant(tenant, tenantSpec())
      expect((await stores[2]?.getTenant(tenant))?.id).toBe(tenant)
      await Promise.all(stores.map((s) => s.close()))
      expect(await engine.sql('SELECT version FROM schema_migrations ORDER BY version')).toEqual(ALL_VERSIONS)
    } finally {
      await engine.destroy()
    }
  })

  it('refuses a schema name that is not a plain SQL name', async () => {
    await failsWith(
      createPostgresStore({ url, log: silentLogger, schema: 'x"; DROP TABLE y; --' }),
      'REGISTRY_INVALID',
    )
  })
})

describe('createRegistryStore', () => {
  it('uses PGlite in <data dir>/registry without a database URL', async () => {
    const dataDir = tempDir()
    const store = await createRegistryStore({ dataDir, databaseUrl: undefined }, silentLogger)
    await store.close()
    expect(store.kind).toBe('pglite')
    expect(readdirSync(join(dataDir, 'registry'))).toContain('PG_VERSION')
  })

  it('uses PostgreSQL when a database URL is set', async () => {
    // The URL's own options select a throwaway schema, as an operator could.
    const url = inject('databaseUrl')
    const schema = randomSchema()
    const engine = postgresEngine(url, schema)
    const admin = postgresEngine(url, 'public')
    await admin.sql(`CREATE SCHEMA ${schema}`)
    try {
      const withSchema = `${url}?options=${encodeURIComponent(`-c search_path=${schema}`)}`
      const store = await createRegistryStore({ dataDir: tempDir(), databaseUrl: withSchema }, silentLogger)
      await store.close()
      expect(store.kind).toBe('postgres')
      expect(await engine.sql('SELECT version FROM schema_migrations ORDER BY version')).toEqual(ALL_VERSIONS)
    } finally {
      await engine.destroy()
    }
  })
})
