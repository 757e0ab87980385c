// One process owns an embedded log directory at a time; a second one is refused with a clear error.
import { TributaryError } from '../../errors.ts'
import { acquirePidLock } from '../../pid-lock.ts'

export async function acquireLock(path: string): Promise<{ release(): Promise<void> }> {
  const release = await acquirePidLock(
    path,
    (owner) =>
      new TributaryError(
        'BUS_DATA_DIR_LOCKED',
        `the embedded event log at ${path} is in use by ${owner}; stop it or set another TRIBUTARY_DATA_DIR`,
      ),
  )
  return { release }
}
