// Ready-made empty registry databases for PGlite. Creating one runs initdb in WebAssembly and
// every migration, which takes seconds; copying a finished one takes milliseconds. The first
// process that needs one for this PGlite version and this schema builds it in the cache dir, and
// every later new registry (a new data dir, a test's in-memory store) starts from a copy.
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import type { Logger } from '../log.ts'
import { databaseOf } from './pglite-client.ts'
import { migrate } from './sql/migrate.ts'
import { migrations } from './sql/migrations.ts'

export interface RegistryTemplate {
  /** A closed PGlite data directory holding an empty, fully migrated registry. */
  readonly dir: string
  /** The same database as PGlite's data-dir dump, for in-memory registries (`loadDataDir`). */
  readonly dump: string
}

/** PGlite's version, from its package.json (the package does not export that file, so by path). */
const pgliteVersion = (): string => {
  const manifest = new URL('../package.json', import.meta.resolve('@electric-sql/pglite'))
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version
}

/** The folder name: changes with PGlite's version and with any migration. */
export function templateName(): string {
  const schema = createHash('sha256')
    .update(JSON.stringify(migrations.map((m) => [m.version, m.name, m.sql])))
    .digest('hex')
    .slice(0, 16)
  return `registry-pglite-${pgliteVersion()}-${schema}`
}

const pending = new Map<string, Promise<RegistryTemplate>>()

/** The template for this version and schema under `cacheDir`, built first if it is missing. */
export function registryTemplate(cacheDir: string, log: Logger): Promise<RegistryTemplate> {
  const dir = join(cacheDir, templateName())
  let found = pending.get(dir)
  if (found === undefined) {
    found = ensure(cacheDir, dir, log)
    pending.set(dir, found)
    found.catch(() => pending.delete(dir))
  }
  return found
}

async function ensure(cacheDir: string, dir: string, log: Logger): Promise<RegistryTemplate> {
  const template = { dir: join(dir, 'data'), dump: join(dir, 'dump.tar') }
  // `complete` is written last: a folder without it was left by a build that did not finish.
  if (existsSync(join(dir, 'complete'))) return template
  await mkdir(cacheDir, { recursive: true, mode: 0o700 })
  const started = performance.now()
  const building = await mkdtemp(join(cacheDir, '.building-'))
  try {
    const pglite = await PGlite.create({ dataDir: join(building, 'data') })
    try {
      await migrate(databaseOf(pglite), log)
      const dump = await pglite.dumpDataDir('none')
      await writeFile(join(building, 'dump.tar'), Buffer.from(await dump.arrayBuffer()))
    } finally {
      await pglite.close()
    }
    await writeFile(join(building, 'complete'), new Date().toISOString())
    // Atomic: the folder appears complete or not at all. If another process got there first,
    // its template is as good as ours.
    await rename(building, dir).catch((err: unknown) => {
      if (!existsSync(join(dir, 'complete'))) throw err
    })
    log.info({ dir, ms: Math.round(performance.now() - started) }, 'registry template built')
    return template
  } finally {
    await rm(building, { recursive: true, force: true })
  }
}

/** Fills an empty registry directory from the template; the directory appears whole or not at all. */
export async function copyTemplate(template: RegistryTemplate, path: string): Promise<void> {
  const next = `${path}.new`
  await rm(next, { recursive: true, force: true })
  await cp(template.dir, next, { recursive: true })
  await rm(path, { recursive: true, force: true })
  await rename(next, path)
}

/** The template's dump, for an in-memory registry. */
export async function templateDump(template: RegistryTemplate): Promise<Blob> {
  return new Blob([await readFile(template.dump)])
}
