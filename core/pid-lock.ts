// One process owns a directory at a time: a pid file created exclusively, taken over when the
// process that wrote it is gone (a crash), refused while it lives.
import { open, readFile, rm } from 'node:fs/promises'
import type { TributaryError } from './errors.ts'

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

// Locks held by this process: the pid check cannot tell two owners inside one process apart.
const held = new Set<string>()

/**
 * Creates `lockFile` holding this process's pid and resolves with its release. `refuse` makes the
 * error for a lock in use, given who holds it ("this process", "process 123").
 */
export async function acquirePidLock(
  lockFile: string,
  refuse: (owner: string) => TributaryError,
): Promise<() => Promise<void>> {
  if (held.has(lockFile)) throw refuse('this process')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const file = await open(lockFile, 'wx')
      await file.writeFile(String(process.pid))
      await file.close()
      held.add(lockFile)
      return async () => {
        held.delete(lockFile)
        await rm(lockFile, { force: true })
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const owner = Number((await readFile(lockFile, 'utf8').catch(() => '')).trim())
      if (Number.isInteger(owner) && owner > 0 && alive(owner)) throw refuse(`process ${owner}`)
      await rm(lockFile, { force: true }) // left by a process that is gone
    }
  }
  throw refuse('another process')
}
