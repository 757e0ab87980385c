// The publication statements of FileStore (registry migration 13): which uploaded files an operator
// published to a device or to a tenant folder, and the files a device may download.
import { TributaryError } from '../../errors.ts'
import type { FilePublications, FileRecord, FileStore, PublicationTarget } from '../files.ts'
import type { SqlDatabase } from './client.ts'
import { decodeCursor, pageLimit, toPage } from './page.ts'
import { deviceName, read } from './write.ts'

type PublicationStatements = Pick<FileStore, 'publish' | 'unpublish' | 'publications' | 'listPublished'>

const targetParams = (target: PublicationTarget): [string | null, string | null] =>
  'device' in target ? [target.device, null] : [null, target.folder]

export function publicationStatements<Row>(
  db: SqlDatabase,
  files: { readonly columns: string; readonly toRecord: (row: Row) => FileRecord },
): PublicationStatements {
  return {
    publish: (tenant, id, target, at) => {
      const [device, folder] = targetParams(target)
      return read(
        async () => {
          // Only an uploaded file of the tenant: the SELECT finds no row otherwise.
          const { rows } = await db.query<{ file: string | null; published: boolean | null }>(
            `WITH file AS (SELECT id FROM files WHERE tenant = $1 AND id = $2 AND state = 'uploaded'),
             added AS (
               INSERT INTO file_publications (tenant, file_id, device, folder, published_at)
               SELECT $1, id, $3, $4, $5 FROM file
               ON CONFLICT DO NOTHING RETURNING 1)
             SELECT (SELECT id FROM file) AS file, EXISTS (SELECT 1 FROM added) AS published`,
            [tenant, id, device, folder, at.toISOString()],
          )
          const row = rows[0]
          if (row?.file == null) {
            throw new TributaryError('REGISTRY_NOT_FOUND', `file ${JSON.stringify(id)} not found`)
          }
          return row.published === true
        },
        {
          file_publications_device_fkey: `${deviceName(tenant, device ?? '')} does not exist`,
        },
      )
    },

    unpublish: (tenant, id, target) => {
      const [device, folder] = targetParams(target)
      return read(async () => {
        const { rows } = await db.query(
          `DELETE FROM file_publications
           WHERE tenant = $1 AND file_id = $2 AND device IS NOT DISTINCT FROM $3 AND folder IS NOT DISTINCT FROM $4
           RETURNING 1`,
          [tenant, id, device, folder],
        )
        return rows.length > 0
      })
    },

    publications: (tenant, id) =>
      read(async (): Promise<FilePublications> => {
        const { rows } = await db.query<{ device: string | null; folder: string | null }>(
          `SELECT device, folder FROM file_publications WHERE tenant = $1 AND file_id = $2
           ORDER BY device NULLS LAST, folder`,
          [tenant, id],
        )
        return {
          devices: rows.flatMap((r) => (r.device === null ? [] : [r.device])),
          folders: rows.flatMap((r) => (r.folder === null ? [] : [r.folder])),
        }
      }),

    listPublished: (tenant, device, options = {}) => {
      const limit = pageLimit(options)
      const after = decodeCursor(options.after)
      return read(async () => {
        const { rows } = await db.query<Row & { folders: string[] | null }>(
          `SELECT ${files.columns},
             (SELECT array_agg(p.folder ORDER BY p.folder) FROM file_publications p
              WHERE p.tenant = f.tenant AND p.file_id = f.id AND p.folder IS NOT NULL) AS folders
           FROM files f
           WHERE f.tenant = $1 AND f.state = 'uploaded'
             AND ($3::text IS NULL OR f.id > $3)
             AND EXISTS (SELECT 1 FROM file_publications p
               WHERE p.tenant = f.tenant AND p.file_id = f.id
                 AND (CASE WHEN $4::text IS NULL THEN p.device = $2 OR p.folder IS NOT NULL
                      ELSE p.folder = $4 END))
           ORDER BY f.id LIMIT $5`,
          [tenant, device, after, options.folder ?? null, limit + 1],
        )
        return toPage(
          rows,
          limit,
          (row) => ({ file: files.toRecord(row), folders: row.folders ?? [] }),
          (published) => published.file.id,
        )
      })
    },
  }
}
