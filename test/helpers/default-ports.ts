// The machine's default Tributary ports (1883, 1884, 8080, 9400 ...) are one resource that test
// files running side by side would share: a file that starts a process on the defaults, or holds a
// default to see it moved, takes this lock first, and the other such files wait for it. Every
// other test process listens on port 0.
//
// The lock is a directory (mkdir is atomic) holding the owner's pid; a lock whose owner is gone
// (a test worker that was killed), or one left without a pid for 10 s, is taken over.
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { alive } from '../../scripts/kafka/system.ts'
import { TEST_CACHE_DIR } from './cache.ts'

const LOCK = join(TEST_CACHE_DIR, 'default-ports.lock')

/** How old `path` is; 0 when it is gone. */
const ageMs = (path: string): number => {
  try {
    return Date.now() - statSync(path).mtimeMs
  } catch {
    return 0
  }
}

/** Waits until this test file holds the default ports; resolves with the function that frees them. */
export async function holdDefaultPorts(timeoutMs = 300_000): Promise<() => void> {
  const deadline = Date.now() + timeoutMs
  mkdirSync(TEST_CACHE_DIR, { recursive: true })
  for (;;) {
    try {
      mkdirSync(LOCK)
      writeFileSync(join(LOCK, 'pid'), String(process.pid))
      return () => rmSync(LOCK, { recursive: true, force: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    let owner = Number.NaN
    try {
      owner = Number(readFileSync(join(LOCK, 'pid'), 'utf8'))
    } catch {
      // being created or removed right now: look again
    }
    const gone = Number.isInteger(owner) && owner > 0 ? !alive(owner) : ageMs(LOCK) > 10_000
    if (gone) {
      rmSync(LOCK, { recursive: true, force: true })
      continue
    }
    if (Date.now() > deadline) {
      throw new Error(`the default ports are still held by another test file (pid ${owner}, ${LOCK})`)
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}
