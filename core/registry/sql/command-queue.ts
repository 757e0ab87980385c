// The command queue's statements (core/registry/command-queue.ts): one table, claims with a lease
// taken by `FOR UPDATE SKIP LOCKED`, so concurrent instances never claim the same row.
import { TributaryError } from '../../errors.ts'
import type { CommandQueue, QueuedCommand } from '../command-queue.ts'
import { MAX_QUEUED_PER_DEVICE } from '../command-queue.ts'
import type { Protocol } from '../../events/build.ts'
import type { SqlDatabase } from './client.ts'
import type { Timestamp } from './rows.ts'
import { read } from './write.ts'

const MAX_BATCH = 1000
const MAX_LEASE_MS = 3_600_000

interface QueueRow {
  seq: number | string
  id: string
  tenant: string
  device: string
  name: string
  request_id: string | null
  content_type: string | null
  payload: Uint8Array
  sent_at: Timestamp
  expires_at: Timestamp
  origin: string
  fport: number | null
  downlink: string | null
  traceparent: string | null
}

const date = (value: Timestamp): Date => (value instanceof Date ? value : new Date(value))

const toQueued = (row: QueueRow): QueuedCommand => ({
  seq: Number(row.seq),
  id: row.id,
  tenant: row.tenant,
  device: row.device,
  name: row.name,
  requestId: row.request_id ?? undefined,
  contentType: row.content_type ?? undefined,
  payload: Buffer.from(row.payload.buffer, row.payload.byteOffset, row.payload.byteLength),
  time: date(row.sent_at),
  expiresAt: date(row.expires_at),
  origin: row.origin as Protocol,
  fport: row.fport ?? undefined,
  downlink: row.downlink === 'push' || row.downlink === 'replace' ? row.downlink : undefined,
  traceparent: row.traceparent ?? undefined,
})

const bySeq = (a: QueuedCommand, b: QueuedCommand): number => a.seq - b.seq

function checkBatch(limit: number, leaseMs?: number): void {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_BATCH) {
    throw new TributaryError('REGISTRY_INVALID', `limit must be an integer from 1 to ${MAX_BATCH}`)
  }
  if (leaseMs !== undefined && (!Number.isInteger(leaseMs) || leaseMs < 1 || leaseMs > MAX_LEASE_MS)) {
    throw new TributaryError('REGISTRY_INVALID', `lease must be an integer from 1 to ${MAX_LEASE_MS} ms`)
  }
}

export function commandQueueStatements(db: SqlDatabase): CommandQueue {
  return {
    enqueue: (c) =>
      read(async () => {
        // Counted and inserted in one statement; a known id is kept once (the router may see a
        // record twice after a rebalance).
        const { rows } = await db.query<{ outcome: string }>(
          `WITH known AS (SELECT 1 FROM command_queue WHERE id = $1),
                waiting AS (SELECT count(*) AS n FROM command_queue WHERE tenant = $2 AND device = $3),
                added AS (
                  INSERT INTO command_queue (id, tenant, device, name, request_id, content_type, payload,
                                             sent_at, expires_at, origin, fport, downlink, traceparent)
                  SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $14, $12
                  WHERE NOT EXISTS (SELECT 1 FROM known) AND (SELECT n FROM waiting) < $13
                  ON CONFLICT (id) DO NOTHING
                  RETURNING 1)
           SELECT CASE WHEN EXISTS (SELECT 1 FROM added) OR EXISTS (SELECT 1 FROM known)
                       THEN 'queued' ELSE 'full' END AS outcome`,
          [
            c.id,
            c.tenant,
            c.device,
            c.name,
            c.requestId ?? null,
            c.contentType ?? null,
            c.payload,
            c.time.toISOString(),
            c.expiresAt.toISOString(),
            c.origin,
            c.fport ?? null,
            c.traceparent ?? null,
            MAX_QUEUED_PER_DEVICE,
            c.downlink ?? null,
          ],
        )
        return rows[0]?.outcome === 'full' ? 'full' : 'queued'
      }),

    claim: async (tenant, device, holder, now, leaseMs, limit) => {
      checkBatch(limit, leaseMs)
      return read(async () => {
        const { rows } = await db.query<QueueRow>(
          `UPDATE command_queue SET claimed_by = $3, claimed_until = $4::timestamptz + $5 * interval '1 millisecond'
           WHERE seq IN (
             SELECT seq FROM command_queue
             WHERE tenant = $1 AND device = $2 AND expires_at > $4
               AND (claimed_until IS NULL OR claimed_until < $4 OR claimed_by = $3)
               AND NOT EXISTS (SELECT 1 FROM command_queue other
                               WHERE other.tenant = $1 AND other.device = $2
                                 AND other.claimed_by <> $3 AND other.claimed_until >= $4)
             ORDER BY seq LIMIT $6 FOR UPDATE SKIP LOCKED)
           RETURNING *`,
          [tenant, device, holder, now.toISOString(), leaseMs, limit],
        )
        return rows.map(toQueued).sort(bySeq)
      })
    },

    claimExpired: async (holder, now, leaseMs, limit) => {
      checkBatch(limit, leaseMs)
      return read(async () => {
        const { rows } = await db.query<QueueRow>(
          `UPDATE command_queue SET claimed_by = $1, claimed_until = $2::timestamptz + $3 * interval '1 millisecond'
           WHERE seq IN (
             SELECT seq FROM command_queue
             WHERE expires_at <= $2 AND (claimed_until IS NULL OR claimed_until < $2)
             ORDER BY seq LIMIT $4 FOR UPDATE SKIP LOCKED)
           RETURNING *`,
          [holder, now.toISOString(), leaseMs, limit],
        )
        return rows.map(toQueued).sort(bySeq)
      })
    },

    release: async (holder, ids) => {
      if (ids.length === 0) return
      await read(() =>
        db.query(
          `UPDATE command_queue SET claimed_by = NULL, claimed_until = NULL
           WHERE id = ANY($1::text[]) AND claimed_by = $2`,
          [ids, holder],
        ),
      )
    },

    complete: async (ids) => {
      if (ids.length === 0) return
      await read(() => db.query('DELETE FROM command_queue WHERE id = ANY($1::text[])', [ids]))
    },

    pendingDevices: async (tenant, limit) => {
      checkBatch(limit)
      return read(async () => {
        const { rows } = await db.query<{ device: string }>(
          'SELECT DISTINCT device FROM command_queue WHERE tenant = $1 ORDER BY device LIMIT $2',
          [tenant, limit],
        )
        return rows.map((row) => row.device)
      })
    },

    depth: () =>
      read(async () => {
        const { rows } = await db.query<{ n: number | string }>('SELECT count(*) AS n FROM command_queue')
        return Number(rows[0]?.n ?? 0)
      }),
  }
}
