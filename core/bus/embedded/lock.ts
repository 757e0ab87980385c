// One process owns an embedded log directory at a time; a second one is refused with a clear error.
import { open, readFile, rm } from 'node:fs/promises'
import { TributaryError } from '../../errors.ts'

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

export async function acquireLock(path: string): Promise<{ release(): Promise<void> }> {
  if (held.has(path)) {
    throw new TributaryError(
      'BUS_DATA_DIR_LOCKED',
      `the embedded event log at ${path} is already open in this process`,
    )
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const file = await open(path, 'wx')
      await file.writeFile(String(process.pid))
      await file.close()
      held.add(path)
      return {
        release: async () => {
          held.delete(path)
          await rm(path, { force: true })
        },
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim())
      if (Number.isInteger(owner) && owner > 0 && alive(owner)) {
        throw new TributaryError(
          'BUS_DATA_DIR_LOCKED',
          `the embedded event log at ${path} is in use by process ${owner}; stop it or set another TRIBUTARY_DATA_DIR`,
        )
      }
      // The owner is gone (a crash): take the lock over.
      await rm(path, { force: true })
    }
  }
  throw new TributaryError('BUS_DATA_DIR_LOCKED', `could not lock ${path}`)
}
