// The file metadata statements (core/registry/files.ts) and the event outbox beside them.
import { TributaryError } from '../../errors.ts'
import type { CloudEvent, CloudEventAttributes } from '../../events/cloudevent.ts'
import type { EventOutboxEntry, FileRecord, FileStore, FileUsage } from '../files.ts'
import { quotaProblem } from '../files.ts'
import type { SqlClient, SqlDatabase } from './client.ts'
import { publicationStatements } from './file-publications.ts'
import type { Timestamp } from './rows.ts'
import { decodeCursor, pageLimit, toPage } from './page.ts'
import { deviceName, inserted, read } from './write.ts'

/** Advisory lock that makes event_outbox rows commit in seq order (as OUTBOX_LOCK does for changes). */
export const EVENT_OUTBOX_LOCK = 7_151_227_303
const MAX_BATCH = 10_000

/** Records an event in the event outbox, in the caller's transaction (published after it commits). */
export async function appendEvent(tx: SqlClient, event: CloudEvent): Promise<void> {
  await tx.query(
    // The lock is taken in the FROM clause, so before nextval() gives this row its seq.
    `INSERT INTO event_outbox (attributes, data)
     SELECT $1::jsonb, $2 FROM (SELECT pg_advisory_xact_lock($3)) AS ordered`,
    [JSON.stringify(event.attributes), event.data ?? null, EVENT_OUTBOX_LOCK],
  )
}

interface FileRow {
  tenant: string
  id: string
  device: string
  name: string
  size: number | string
  sha256: string | null
  content_type: string
  state: 'pending' | 'uploaded'
  created_at: Timestamp
  uploaded_at: Timestamp | null
  expires_at: Timestamp | null
}

const date = (value: Timestamp): Date => (value instanceof Date ? value : new Date(value))

const toRecord = (row: FileRow): FileRecord => ({
  tenant: row.tenant,
  id: row.id,
  device: row.device,
  name: row.name,
  size: Number(row.size),
  sha256: row.sha256 ?? undefined,
  contentType: row.content_type,
  state: row.state,
  createdAt: date(row.created_at),
  uploadedAt: row.uploaded_at === null ? undefined : date(row.uploaded_at),
  expiresAt: row.expires_at === null ? undefined : date(row.expires_at),
})

/** First key of the advisory lock that serializes a tenant's quota checks (the second is the tenant's hash). */
const FILE_QUOTA_LOCK = 715_122

/** Uploaded files, and pending ones whose token is good or spent (their body is being received). */
async function usageOf(db: SqlClient, tenant: string, now: Date): Promise<FileUsage> {
  const { rows } = await db.query<{ files: number | string; bytes: number | string }>(
    `SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM files
     WHERE tenant = $1 AND (state = 'uploaded' OR token_hash IS NULL OR expires_at > $2)`,
    [tenant, now.toISOString()],
  )
  const row = rows[0]
  return { files: Number(row?.files ?? 0), bytes: Number(row?.bytes ?? 0) }
}

const COLUMNS =
  'tenant, id, device, name, size, sha256, content_type, state, created_at, uploaded_at, expires_at'

export function fileStatements(db: SqlDatabase): FileStore {
  return {
    ...publicationStatements<FileRow>(db, { columns: COLUMNS, toRecord }),
    createUpload: (upload, quota) =>
      read(
        () =>
          db.transaction(async (tx) => {
            if (quota !== undefined && (quota.maxBytes !== null || quota.maxFiles !== null)) {
              // One issuer per tenant at a time: two uploads that each fit cannot together pass.
              await tx.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [
                FILE_QUOTA_LOCK,
                upload.tenant,
              ])
              const used = await usageOf(tx, upload.tenant, upload.createdAt)
              const over = quotaProblem(used, upload.size, quota)
              if (over !== undefined) {
                throw new TributaryError('FILES_QUOTA_EXCEEDED', over, {
                  details: { files: used.files, bytes: used.bytes },
                })
              }
            }
            const { rows } = await tx.query<FileRow>(
              `INSERT INTO files (tenant, id, device, name, size, sha256, content_type, state, token_hash, created_at, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10) RETURNING ${COLUMNS}`,
              [
                upload.tenant,
                upload.id,
                upload.device,
                upload.name,
                upload.size,
                upload.sha256 ?? null,
                upload.contentType,
                upload.tokenHash,
                upload.createdAt.toISOString(),
                upload.expiresAt.toISOString(),
              ],
            )
            return toRecord(inserted(rows))
          }),
        {
          files_device_fkey: `${deviceName(upload.tenant, upload.device)} does not exist`,
          files_tenant_fkey: `${deviceName(upload.tenant, upload.device)} does not exist`,
          files_pkey: `file ${JSON.stringify(upload.id)} exists already`,
        },
      ),

    usage: (tenant, now) => read(() => usageOf(db, tenant, now)),

    claimUpload: (tokenHash, id, now) =>
      read(async () => {
        const { rows } = await db.query<FileRow>(
          `UPDATE files SET token_hash = NULL
           WHERE token_hash = $1 AND id = $2 AND state = 'pending' AND expires_at > $3
           RETURNING ${COLUMNS}`,
          [tokenHash, id, now.toISOString()],
        )
        const row = rows[0]
        return row === undefined ? undefined : toRecord(row)
      }),

    completeUpload: (tenant, id, done, event) =>
      read(() =>
        db.transaction(async (tx) => {
          const { rows } = await tx.query<FileRow>(
            `UPDATE files SET state = 'uploaded', sha256 = $3, uploaded_at = $4, expires_at = NULL
             WHERE tenant = $1 AND id = $2 AND state = 'pending' AND token_hash IS NULL
             RETURNING ${COLUMNS}`,
            [tenant, id, done.sha256, done.uploadedAt.toISOString()],
          )
          const row = rows[0]
          if (row === undefined) {
            throw new TributaryError(
              'REGISTRY_NOT_FOUND',
              `no claimed upload ${JSON.stringify(id)} of tenant ${tenant}`,
            )
          }
          await appendEvent(tx, event)
          return toRecord(row)
        }),
      ),

    dropLapsedUploads: (tenant, before, limit) => {
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_BATCH) {
        throw new TributaryError('REGISTRY_INVALID', `limit must be an integer from 1 to ${MAX_BATCH}`)
      }
      return read(async () => {
        const { rows } = await db.query<FileRow>(
          `DELETE FROM files WHERE (tenant, id) IN (
             SELECT tenant, id FROM files
             WHERE tenant = $1 AND state = 'pending' AND expires_at < $2
             ORDER BY expires_at LIMIT $3)
           RETURNING ${COLUMNS}`,
          [tenant, before.toISOString(), limit],
        )
        return rows.map(toRecord)
      })
    },

    abandonUpload: (tenant, id) =>
      read(async () => {
        await db.query(`DELETE FROM files WHERE tenant = $1 AND id = $2 AND state = 'pending'`, [tenant, id])
      }),

    get: (tenant, id) =>
      read(async () => {
        const { rows } = await db.query<FileRow>(
          `SELECT ${COLUMNS} FROM files WHERE tenant = $1 AND id = $2`,
          [tenant, id],
        )
        const row = rows[0]
        return row === undefined ? undefined : toRecord(row)
      }),

    list: (tenant, options = {}) => {
      const limit = pageLimit(options)
      const after = decodeCursor(options.after)
      return read(async () => {
        const { rows } = await db.query<FileRow>(
          `SELECT ${COLUMNS} FROM files
           WHERE tenant = $1 AND state = 'uploaded'
             AND ($2::text IS NULL OR id > $2)
             AND ($3::text IS NULL OR device = $3)
             AND ($4::text IS NULL OR starts_with(name, $4))
           ORDER BY id LIMIT $5`,
          [tenant, after, options.device ?? null, options.namePrefix ?? null, limit + 1],
        )
        return toPage(rows, limit, toRecord, (file) => file.id)
      })
    },

    remove: (tenant, id) =>
      read(async () => {
        const { rows } = await db.query<FileRow>(
          `DELETE FROM files WHERE tenant = $1 AND id = $2 AND state = 'uploaded' RETURNING ${COLUMNS}`,
          [tenant, id],
        )
        const row = rows[0]
        return row === undefined ? undefined : toRecord(row)
      }),

    pendingEvents: async (limit): Promise<EventOutboxEntry[]> => {
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_BATCH) {
        throw new TributaryError('REGISTRY_INVALID', `limit must be an integer from 1 to ${MAX_BATCH}`)
      }
      return read(async () => {
        const { rows } = await db.query<{
          seq: string | number
          attributes: CloudEventAttributes
          data: Uint8Array | null
        }>('SELECT seq, attributes, data FROM event_outbox ORDER BY seq LIMIT $1', [limit])
        return rows.map((row) => {
          const event: CloudEvent = {
            attributes: row.attributes,
            data: row.data === null ? undefined : Buffer.from(row.data),
          }
          return { seq: Number(row.seq), event }
        })
      })
    },

    markEventsPublished: async (seq) => {
      if (!Number.isSafeInteger(seq)) throw new TributaryError('REGISTRY_INVALID', 'seq must be an integer')
      return read(async () => {
        await db.query('DELETE FROM event_outbox WHERE seq <= $1', [seq])
      })
    },

    claimSweeps: (now, leaseUntil, limit) => {
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_BATCH) {
        throw new TributaryError('REGISTRY_INVALID', `limit must be an integer from 1 to ${MAX_BATCH}`)
      }
      return read(async () => {
        const { rows } = await db.query<{ tenant: string; id: string; device: string; attempts: number }>(
          `UPDATE blob_sweeps SET not_before = $2, attempts = attempts + 1
           WHERE (tenant, id) IN (
             SELECT tenant, id FROM blob_sweeps WHERE not_before <= $1
             ORDER BY not_before LIMIT $3 FOR UPDATE SKIP LOCKED)
           RETURNING tenant, id, device, attempts - 1 AS attempts`,
          [now.toISOString(), leaseUntil.toISOString(), limit],
        )
        return rows.map((row) => ({
          tenant: row.tenant,
          id: row.id,
          device: row.device,
          attempts: Number(row.attempts),
        }))
      })
    },

    sweepDone: (tenant, id) =>
      read(async () => {
        await db.query('DELETE FROM blob_sweeps WHERE tenant = $1 AND id = $2', [tenant, id])
      }),

    sweepFailed: (tenant, id, retryAt) =>
      read(async () => {
        await db.query('UPDATE blob_sweeps SET not_before = $3 WHERE tenant = $1 AND id = $2', [
          tenant,
          id,
          retryAt.toISOString(),
        ])
      }),
  }
}
