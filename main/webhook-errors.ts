// The webhook engine's error log on the registry database: failed attempts are buffered and written
// in the background, one write at a time, so a slow or unreachable database never holds up delivery.
import type { ErrorLog } from '../consumers/webhook/ports.ts'
import type { Logger } from '../core/log.ts'
import type { WebhookError } from '../core/registry/model.ts'
import type { RegistryStore } from '../core/registry/store.ts'

/** Most errors waiting for a write; past it the oldest are dropped (the newest matter most). */
export const MAX_BUFFERED_ERRORS = 1000

export interface StoredErrorLog extends ErrorLog {
  /** Resolves once every error recorded so far was written (or its write failed). */
  flush(): Promise<void>
}

export function storedErrorLog(
  store: Pick<RegistryStore, 'recordWebhookErrors'>,
  log: Logger,
): StoredErrorLog {
  let buffer: WebhookError[] = []
  let writing: Promise<void> | undefined

  async function drain(): Promise<void> {
    while (buffer.length > 0) {
      const batch = buffer
      buffer = []
      try {
        await store.recordWebhookErrors(batch)
      } catch (err) {
        log.warn({ err, errors: batch.length }, 'recording webhook errors failed; they are not kept')
      }
    }
  }

  return {
    record(subscription, error) {
      buffer.push({
        tenant: subscription.tenant,
        subscription: subscription.id,
        at: error.at,
        webhookId: error.id,
        attempt: error.attempt,
        status: error.status ?? null,
        error: error.error,
      })
      if (buffer.length > MAX_BUFFERED_ERRORS) buffer.splice(0, buffer.length - MAX_BUFFERED_ERRORS)
      writing ??= drain().finally(() => (writing = undefined))
    },
    async flush() {
      while (writing !== undefined) await writing
    },
  }
}
