// The blob sweeper: deletes from the blob store the objects whose file rows are gone (a deleted
// device or tenant takes its files' rows by cascade; registry migration 11 records each object in
// blob_sweeps in that same transaction). It leases a batch, deletes each object (idempotent), and
// forgets the sweep; an object the store fails to delete is tried again after a growing delay, and
// one whose process died mid-sweep after its lease. Every process runs one; leases keep them apart.
import { sleep } from '../bus/backoff.ts'
import type { Component } from '../lifecycle.ts'
import type { Logger } from '../log.ts'
import type { FileStore } from '../registry/files.ts'
import type { BlobStore } from './blobs.ts'
import { blobKey } from './keys.ts'

export interface BlobSweeperOptions {
  readonly files: Pick<FileStore, 'claimSweeps' | 'sweepDone' | 'sweepFailed'>
  readonly blobs: Pick<BlobStore, 'delete'>
  readonly log: Logger
  /** Pause between passes that found nothing due (default 10 s). */
  readonly pollMs?: number | undefined
  /** Sweeps leased per pass (default 100). */
  readonly batchSize?: number | undefined
  /** How long a leased sweep is left to this process (default 5 minutes). */
  readonly leaseMs?: number | undefined
  /** First delay after a failed delete, doubled per attempt up to an hour (default 5 s). */
  readonly retryMs?: number | undefined
  readonly now?: (() => Date) | undefined
}

export interface BlobSweeper extends Component {
  /** One pass: sweeps what is due now; resolves with the objects deleted and the deletes that failed. */
  sweep(): Promise<{ readonly deleted: number; readonly failed: number }>
}

const MAX_RETRY_MS = 3_600_000

export function createBlobSweeper(options: BlobSweeperOptions): BlobSweeper {
  const { files, blobs, log } = options
  const now = options.now ?? (() => new Date())
  const pollMs = options.pollMs ?? 10_000
  const batchSize = options.batchSize ?? 100
  const leaseMs = options.leaseMs ?? 300_000
  const retryMs = options.retryMs ?? 5_000
  const stopController = new AbortController()
  let running: Promise<void> | undefined

  async function sweep(): Promise<{ deleted: number; failed: number }> {
    const at = now()
    const due = await files.claimSweeps(at, new Date(at.getTime() + leaseMs), batchSize)
    let deleted = 0
    let failed = 0
    for (const item of due) {
      try {
        await blobs.delete(blobKey(item.tenant, item.device, item.id))
      } catch (err) {
        failed++
        const delay = Math.min(retryMs * 2 ** item.attempts, MAX_RETRY_MS)
        log.warn(
          { err, tenant: item.tenant, file: item.id, attempts: item.attempts + 1 },
          'blob sweep failed; retrying',
        )
        await files.sweepFailed(item.tenant, item.id, new Date(now().getTime() + delay))
        continue
      }
      await files.sweepDone(item.tenant, item.id)
      deleted++
    }
    return { deleted, failed }
  }

  async function loop(): Promise<void> {
    while (!stopController.signal.aborted) {
      let full = false
      try {
        const result = await sweep()
        full = result.deleted + result.failed >= batchSize && result.failed === 0
      } catch (err) {
        log.error({ err }, 'blob sweep pass failed; retrying')
      }
      if (!full) await sleep(pollMs, stopController.signal)
    }
  }

  return {
    name: 'blob-sweeper',
    sweep,
    async start() {
      running ??= loop()
    },
    async stop() {
      stopController.abort()
      await running
    },
  }
}
