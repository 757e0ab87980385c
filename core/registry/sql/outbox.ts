// Reading and trimming the registry outbox: the relay publishes pending changes in seq order and
// then marks them published (deletes them; the bus keeps the history).
import { TributaryError } from '../../errors.ts'
import type { RegistryChange } from '../model.ts'
import type { OutboxEntry } from '../store.ts'
import type { SqlDatabase } from './client.ts'
import { read } from './write.ts'

const MAX_BATCH = 10_000

export function outboxStatements(db: SqlDatabase) {
  return {
    pendingChanges: async (limit: number): Promise<OutboxEntry[]> => {
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_BATCH) {
        throw new TributaryError('REGISTRY_INVALID', `limit must be an integer from 1 to ${MAX_BATCH}`)
      }
      return read(async () => {
        // bigserial comes back as a string from `pg` and as a number from PGlite.
        const { rows } = await db.query<{ seq: string | number; change: RegistryChange }>(
          'SELECT seq, change FROM registry_outbox ORDER BY seq LIMIT $1',
          [limit],
        )
        return rows.map((row) => ({ seq: Number(row.seq), change: row.change }))
      })
    },

    markPublished: async (seq: number): Promise<void> => {
      if (!Number.isSafeInteger(seq)) throw new TributaryError('REGISTRY_INVALID', 'seq must be an integer')
      return read(async () => {
        await db.query('DELETE FROM registry_outbox WHERE seq <= $1', [seq])
      })
    },
  }
}
