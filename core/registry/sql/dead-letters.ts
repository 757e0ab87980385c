// Dead-letter statements: the per-tenant index of the dead-letter topic that the API lists, and
// the re-drive of a subscription's letters. Rows are facts copied from the topic, not
// configuration: no version; only a re-drive request writes an outbox change (for the engines).
import { TributaryError } from '../../errors.ts'
import type { DeadLetter, DeadLetterListOptions, Page, RedriveClaim, RedriveOutcome } from '../model.ts'
import type { SqlClient, SqlDatabase } from './client.ts'
import { decodeCursor, pageLimit, toPage } from './page.ts'
import { iso } from './rows.ts'
import { read, tenantName, write } from './write.ts'

/** The most value bytes kept per dead letter; a longer value is stored as null (the topic has it all). */
export const DEAD_LETTER_DATA_MAX_BYTES = 64 * 1024

/** Longest text kept per field, in characters; longer values are cut. */
export const DEAD_LETTER_FIELD_MAX = {
  id: 256,
  device: 256,
  type: 256,
  subject: 512,
  step: 64,
  reason: 64,
  detail: 4096,
  contentType: 256,
  subscription: 256,
} as const

type Timestamp = Date | string

interface DeadLetterRow {
  tenant: string
  partition: number
  offset: number | string
  id: string
  device: string | null
  type: string | null
  subject: string | null
  step: string
  reason: string
  detail: string | null
  first_failure: Timestamp
  dead_lettered_at: Timestamp
  content_type: string | null
  data: Uint8Array | null
  subscription: string | null
}

function toDeadLetter(row: DeadLetterRow): DeadLetter {
  return {
    tenant: row.tenant,
    id: row.id,
    partition: row.partition,
    // `pg` returns bigint as a string, PGlite as a number.
    offset: Number(row.offset),
    device: row.device,
    type: row.type,
    subject: row.subject,
    step: row.step,
    reason: row.reason,
    detail: row.detail,
    firstFailure: iso(row.first_failure),
    deadLetteredAt: iso(row.dead_lettered_at),
    contentType: row.content_type,
    data:
      row.data === null
        ? null
        : Buffer.from(row.data.buffer, row.data.byteOffset, row.data.byteLength).toString('base64'),
    subscription: row.subscription,
  }
}

/** PostgreSQL text holds no NUL and JSON no lone surrogates: both become U+FFFD. Then cut to `max`. */
function clean(value: string, max: number): string {
  return value.toWellFormed().replaceAll('\0', '\uFFFD').slice(0, max)
}

const cleanOrNull = (value: string | null, max: number): string | null =>
  value === null ? null : clean(value, max)

function instant(value: string, field: string): string {
  const ms = Date.parse(value)
  if (!Number.isFinite(ms)) {
    throw new TributaryError(
      'REGISTRY_INVALID',
      `dead letter ${field} ${JSON.stringify(value)} is not a time`,
    )
  }
  // Milliseconds, as cursors carry them: a finer stored time would make keyset pages skip rows.
  return new Date(ms).toISOString()
}

function checkPosition(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TributaryError('REGISTRY_INVALID', `dead letter ${field} must be a whole number ≥ 0`, {
      details: { [field]: value },
    })
  }
  return value
}

/** A dead letter as one element of the JSON array the insert reads, every field within its limit. */
function toRecord(letter: DeadLetter): Record<string, unknown> {
  const max = DEAD_LETTER_FIELD_MAX
  const data = letter.data === null ? null : Buffer.from(letter.data, 'base64')
  return {
    tenant: letter.tenant,
    partition: checkPosition(letter.partition, 'partition'),
    offset: checkPosition(letter.offset, 'offset'),
    id: clean(letter.id, max.id),
    device: cleanOrNull(letter.device, max.device),
    type: cleanOrNull(letter.type, max.type),
    subject: cleanOrNull(letter.subject, max.subject),
    step: clean(letter.step, max.step),
    reason: clean(letter.reason, max.reason),
    detail: cleanOrNull(letter.detail, max.detail),
    first_failure: instant(letter.firstFailure, 'firstFailure'),
    dead_lettered_at: instant(letter.deadLetteredAt, 'deadLetteredAt'),
    content_type: cleanOrNull(letter.contentType, max.contentType),
    data: data === null || data.length > DEAD_LETTER_DATA_MAX_BYTES ? null : data.toString('base64'),
    subscription: cleanOrNull(letter.subscription, max.subscription),
  }
}

// Cursor: the sort key of the last row on a page, `<dead_lettered_at> <partition> <offset>`.
const CURSOR = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\d{1,10}) (\d{1,16})$/
const cursorOf = (letter: DeadLetter): string =>
  `${letter.deadLetteredAt} ${letter.partition} ${letter.offset}`

function position(after: string | undefined): [string | null, number | null, number | null] {
  const key = decodeCursor(after)
  if (key === null) return [null, null, null]
  const match = CURSOR.exec(key)
  if (match === null || !Number.isFinite(Date.parse(match[1] ?? ''))) {
    throw new TributaryError('REGISTRY_INVALID', 'the page cursor is invalid; use a `next` value as given')
  }
  return [match[1] ?? null, Number(match[2]), Number(match[3])]
}

const NEWEST_FIRST = 'ORDER BY dead_lettered_at DESC, partition DESC, "offset" DESC'

export function deadLetterStatements(db: SqlDatabase) {
  return {
    recordDeadLetters: async (letters: readonly DeadLetter[]): Promise<void> => {
      if (letters.length === 0) return
      // The first of a batch's letters at one position wins, as it would across batches.
      const unique = new Map<string, Record<string, unknown>>()
      for (const letter of letters) {
        const key = `${letter.tenant} ${letter.partition} ${letter.offset}`
        if (!unique.has(key)) unique.set(key, toRecord(letter))
      }
      const records = JSON.stringify([...unique.values()])
      // Letters of tenants that do not exist (any more) are skipped, and a (partition, offset)
      // seen before is kept once, so a batch redelivered after a crash changes nothing. A tenant
      // deleted between the check and the insert fails the foreign key: the caller retries, and
      // then the letter is skipped.
      await read(() =>
        db.query(
          `INSERT INTO dead_letters (tenant, partition, "offset", id, device, type, subject, step, reason,
             detail, first_failure, dead_lettered_at, content_type, data, subscription)
           SELECT l.tenant, l.partition, l."offset", l.id, l.device, l.type, l.subject, l.step, l.reason,
             l.detail, l.first_failure, l.dead_lettered_at, l.content_type, decode(l.data, 'base64'),
             l.subscription
           FROM jsonb_to_recordset($1::jsonb) AS l(tenant text, partition integer, "offset" bigint, id text,
             device text, type text, subject text, step text, reason text, detail text,
             first_failure timestamptz, dead_lettered_at timestamptz, content_type text, data text,
             subscription text)
           WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = l.tenant)
           ON CONFLICT (tenant, partition, "offset") DO NOTHING`,
          [records],
        ),
      )
    },

    listDeadLetters: async (tenant: string, options?: DeadLetterListOptions): Promise<Page<DeadLetter>> => {
      const limit = pageLimit(options)
      const [at, partition, offset] = position(options?.after)
      return read(async () => {
        const { rows } = await db.query<DeadLetterRow>(
          `SELECT * FROM dead_letters
           WHERE tenant = $1
             AND ($2::timestamptz IS NULL
               OR (dead_lettered_at, partition, "offset") < ($2::timestamptz, $3::integer, $4::bigint))
             AND ($5::text IS NULL OR device = $5)
             AND ($6::text IS NULL OR reason = $6)
             AND ($7::text IS NULL OR subscription = $7)
             AND redriven_at IS NULL
           ${NEWEST_FIRST} LIMIT $8`,
          [
            tenant,
            at,
            partition,
            offset,
            options?.device ?? null,
            options?.reason ?? null,
            options?.subscription ?? null,
            limit + 1,
          ],
        )
        return toPage(rows, limit, toDeadLetter, cursorOf)
      })
    },

    trimDeadLetters: async (tenant: string, keep: number): Promise<void> => {
      if (!Number.isSafeInteger(keep) || keep < 0) {
        throw new TributaryError('REGISTRY_INVALID', 'keep must be a whole number ≥ 0', { details: { keep } })
      }
      // Deletes the (keep + 1)-th newest letter and every older one; nothing when there are fewer.
      await read(() =>
        db.query(
          `DELETE FROM dead_letters
           WHERE tenant = $1 AND (dead_lettered_at, partition, "offset") <= (
             SELECT dead_lettered_at, partition, "offset" FROM dead_letters
             WHERE tenant = $1 ${NEWEST_FIRST} OFFSET $2 LIMIT 1)`,
          [tenant, keep],
        ),
      )
    },

    requestRedrive: (tenant: string, subscription: string, ids?: readonly string[]): Promise<number> =>
      write(db, {}, async (tx) => {
        const version = await redrivable(tx, tenant, subscription)
        // A letter asked for again while an engine holds it keeps its claim (and its first request).
        const { rows } = await tx.query<{ n: number }>(
          `WITH asked AS (
             UPDATE dead_letters SET redrive_requested_at = coalesce(redrive_requested_at, now())
             WHERE tenant = $1 AND subscription = $2 AND step = 'webhook' AND redriven_at IS NULL
               AND ($3::jsonb IS NULL OR id IN (SELECT jsonb_array_elements_text($3::jsonb)))
             RETURNING 1)
           SELECT count(*)::integer AS n FROM asked`,
          [tenant, subscription, ids === undefined ? null : JSON.stringify(ids)],
        )
        // The subscription's engines hear of it as a change of the subscription (same version).
        return {
          result: rows[0]?.n ?? 0,
          change: { op: 'updated', resource: 'subscription', tenant, id: subscription, version },
        }
      }),

    claimRedrives: (
      tenant: string,
      subscription: string,
      limit: number,
      leaseMs: number,
    ): Promise<RedriveClaim[]> =>
      read(async () => {
        // SKIP LOCKED: engines claiming at once each get other letters; an expired lease is taken over.
        const { rows } = await db.query<ClaimRow>(
          `UPDATE dead_letters d SET redrive_claimed_until = now() + $4::integer * interval '1 millisecond'
           FROM (SELECT tenant, partition, "offset" FROM dead_letters
                 WHERE tenant = $1 AND subscription = $2 AND redrive_requested_at IS NOT NULL
                   AND redriven_at IS NULL AND (redrive_claimed_until IS NULL OR redrive_claimed_until < now())
                 ORDER BY dead_lettered_at, partition, "offset" LIMIT $3 FOR UPDATE SKIP LOCKED) c
           WHERE d.tenant = c.tenant AND d.partition = c.partition AND d."offset" = c."offset"
           RETURNING d.tenant, d.subscription, d.id, d.partition, d."offset", d.dead_lettered_at`,
          [tenant, subscription, positiveInt(limit, 'limit'), positiveInt(leaseMs, 'leaseMs')],
        )
        return rows
          .sort(
            (a, b) =>
              iso(a.dead_lettered_at).localeCompare(iso(b.dead_lettered_at)) ||
              a.partition - b.partition ||
              Number(a.offset) - Number(b.offset),
          )
          .map((r) => ({
            tenant: r.tenant,
            subscription: r.subscription,
            id: r.id,
            partition: r.partition,
            offset: Number(r.offset),
          }))
      }),

    finishRedrive: (claim: RedriveClaim, outcome: RedriveOutcome): Promise<void> =>
      read(async () => {
        const done = outcome === 'delivered' || outcome === 'dead-lettered'
        await db.query(
          `UPDATE dead_letters SET redrive_claimed_until = NULL,
             redrive_requested_at = CASE WHEN $4::text = 'released' THEN redrive_requested_at END,
             redriven_at = CASE WHEN $5::boolean THEN now() END,
             redrive_outcome = $4::text
           WHERE tenant = $1 AND partition = $2 AND "offset" = $3 AND redriven_at IS NULL`,
          [claim.tenant, claim.partition, claim.offset, outcome, done],
        )
      }),

    pendingRedrives: (): Promise<Array<{ tenant: string; subscription: string }>> =>
      read(async () => {
        const { rows } = await db.query<{ tenant: string; subscription: string }>(
          `SELECT DISTINCT tenant, subscription FROM dead_letters
           WHERE redrive_requested_at IS NOT NULL AND redriven_at IS NULL
             AND (redrive_claimed_until IS NULL OR redrive_claimed_until < now())`,
        )
        return rows
      }),
  }
}

interface ClaimRow {
  tenant: string
  subscription: string
  id: string
  partition: number
  offset: number | string
  dead_lettered_at: Timestamp
}

function positiveInt(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < 1 || value >= 2 ** 31) {
    throw new TributaryError('REGISTRY_INVALID', `${field} must be a whole number ≥ 1`, {
      details: { [field]: value },
    })
  }
  return value
}

/** The subscription's version, locked for the request; 404 when it does not exist, 409 when disabled. */
async function redrivable(tx: SqlClient, tenant: string, subscription: string): Promise<number> {
  const { rows } = await tx.query<{ state: string; version: number }>(
    'SELECT state, version FROM webhook_subscriptions WHERE tenant = $1 AND id = $2 FOR UPDATE',
    [tenant, subscription],
  )
  const row = rows[0]
  const what = `webhook subscription ${JSON.stringify(subscription)} of ${tenantName(tenant)}`
  if (row === undefined) throw new TributaryError('REGISTRY_NOT_FOUND', `${what} does not exist`)
  if (row.state === 'disabled') {
    throw new TributaryError(
      'REGISTRY_CONFLICT',
      `${what} is disabled (its endpoint answered 410 Gone); resume it before re-driving its dead letters`,
    )
  }
  return row.version
}
