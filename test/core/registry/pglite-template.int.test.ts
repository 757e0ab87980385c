// Ready-made registries: the first PGlite registry built for a schema leaves a template in the cache
// dir; later ones, on disk and in memory, start from it and are the same fully migrated database;
// a cache dir that cannot be used only costs the shortcut.
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createLogger } from '../../../core/log.ts'
import type { LogLine } from '../../helpers/process.ts'
import { createPgliteStore } from '../../../core/registry/pglite.ts'
import { registryTemplate, templateName } from '../../../core/registry/pglite-template.ts'
import { migrations } from '../../../core/registry/sql/migrations.ts'
import { Writable } from 'node:stream'

function capture(): { log: ReturnType<typeof createLogger>; lines: LogLine[] } {
  const lines: LogLine[] = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split('\n')) if (text) lines.push(JSON.parse(text) as LogLine)
      done()
    },
  })
  return { log: createLogger({ level: 'info', destination: stream }), lines }
}

describe('PGlite registry templates', () => {
  it('builds the template once and starts new registries, on disk and in memory, from it', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'tributary-cache-'))
    const first = capture()
    const a = await createPgliteStore({
      dataDir: mkdtempSync(join(tmpdir(), 'tributary-t-')),
      cacheDir,
      log: first.log,
    })
    await a.close()
    expect(first.lines.filter((l) => l.msg === 'registry template built')).toHaveLength(1)
    expect(readdirSync(cacheDir)).toEqual([templateName()])

    const second = capture()
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-t-'))
    const b = await createPgliteStore({ dataDir, cacheDir, log: second.log })
    await b.close()
    expect(second.lines.filter((l) => l.msg === 'registry template built')).toEqual([])
    // A copy needs no migration: every one is already recorded.
    expect(second.lines.filter((l) => l.msg === 'registry migration applied')).toEqual([])

    const memory = capture()
    const c = await createPgliteStore({ cacheDir, log: memory.log })
    await c.close()
    expect(memory.lines.filter((l) => l.msg === 'registry migration applied')).toEqual([])

    const { PGlite } = await import('@electric-sql/pglite')
    const db = await PGlite.create({ dataDir: join(dataDir, 'registry') })
    const versions = await db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY 1')
    await db.close()
    expect(versions.rows.map((r) => r.version)).toEqual(migrations.map((m) => m.version))
  })

  it('falls back to building the registry from scratch when the cache dir cannot be used', async () => {
    const blocked = join(mkdtempSync(join(tmpdir(), 'tributary-cache-')), 'file')
    writeFileSync(blocked, 'not a directory')
    const { log, lines } = capture()
    const store = await createPgliteStore({
      dataDir: mkdtempSync(join(tmpdir(), 'tributary-t-')),
      cacheDir: blocked,
      log,
    })
    await store.close()
    expect(lines.find((l) => l.msg.startsWith('registry template unavailable'))).toBeDefined()
    expect(lines.filter((l) => l.msg === 'registry migration applied').length).toBe(migrations.length)
    await expect(registryTemplate(blocked, log)).rejects.toThrow()
  })
})
