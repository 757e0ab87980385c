// Builds the web console (console/ → console/dist) with Vite, when the output is missing or older
// than a source: npm's prepare (npm ci), prestart and pretest hooks run it, so a fresh clone's
// `npm ci && npm start` serves it and a build that is up to date costs a few file stats.
//
//   node scripts/console-build.ts [--force]
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'vite'

const root = fileURLToPath(new URL('../console/', import.meta.url))
const out = join(root, 'dist')
const inputs = [join(root, 'index.html'), join(root, 'src'), fileURLToPath(import.meta.url)]

/** The newest modification time under `path` (0 when it does not exist). */
function newest(path: string): number {
  let stat
  try {
    stat = statSync(path)
  } catch {
    return 0
  }
  if (!stat.isDirectory()) return stat.mtimeMs
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((name) => newest(join(path, name))))
}

const built = newest(join(out, 'index.html'))
if (!process.argv.includes('--force') && built > 0 && built >= Math.max(...inputs.map(newest))) {
  console.log('console: up to date (console/dist)')
} else {
  await build({
    root,
    base: '/console/',
    configFile: false,
    logLevel: 'warn',
    oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
    build: {
      outDir: out,
      emptyOutDir: true,
      // The policy allows no inline script: the preload helper stays out of the page.
      modulePreload: { polyfill: false },
      assetsInlineLimit: 0,
      target: 'es2022',
    },
  })
  console.log('console: built into console/dist')
}
