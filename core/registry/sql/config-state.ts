// Configuration delivery state per device: the ids sent (newest few), the last delivery and the
// last report of the device, and the tenant's fleet view by configuration id. Adapters write it on
// the hot path; it is neither versioned nor a registry change.
import type { ConfigReport, ConfigState, ConfigStatusEntry } from '../model.ts'
import { CONFIG_SENT_IDS_KEPT } from '../model.ts'
import type { SqlDatabase } from './client.ts'
import type { Timestamp } from './rows.ts'
import { iso } from './rows.ts'
import { read } from './write.ts'

interface StateRow {
  sent_ids: string[]
  delivered_id: string
  delivered_at: Timestamp
  delivered_protocol: string
  applied_id: string | null
  status_code: number | null
  reason_phrase: string | null
  applied_at: Timestamp | null
  applied_protocol: string | null
}

function toState(row: StateRow): ConfigState {
  return {
    delivered: { configId: row.delivered_id, time: iso(row.delivered_at), protocol: row.delivered_protocol },
    applied:
      row.applied_id === null || row.status_code === null || row.applied_at === null
        ? null
        : {
            configId: row.applied_id,
            statusCode: row.status_code,
            reasonPhrase: row.reason_phrase,
            time: iso(row.applied_at),
            protocol: row.applied_protocol ?? '',
          },
  }
}

export function configStateStatements(db: SqlDatabase) {
  return {
    recordConfigDelivered: (
      tenant: string,
      device: string,
      configId: string,
      protocol: string,
      at: Date,
    ): Promise<void> =>
      read(() =>
        db.transaction(async (tx) => {
          const { rows } = await tx.query<{ sent_ids: string[] }>(
            'SELECT sent_ids FROM device_config_state WHERE tenant = $1 AND device = $2 FOR UPDATE',
            [tenant, device],
          )
          const sent = [configId, ...(rows[0]?.sent_ids ?? []).filter((id) => id !== configId)]
          // INSERT ... SELECT: a device deleted meanwhile is skipped rather than an error.
          await tx.query(
            `INSERT INTO device_config_state (tenant, device, sent_ids, delivered_id, delivered_at, delivered_protocol)
             SELECT $1, $2, $3::jsonb, $4, $5, $6 FROM devices WHERE tenant = $1 AND id = $2
             ON CONFLICT (tenant, device) DO UPDATE SET sent_ids = EXCLUDED.sent_ids,
               delivered_id = EXCLUDED.delivered_id, delivered_at = EXCLUDED.delivered_at,
               delivered_protocol = EXCLUDED.delivered_protocol`,
            [
              tenant,
              device,
              JSON.stringify(sent.slice(0, CONFIG_SENT_IDS_KEPT)),
              configId,
              at.toISOString(),
              protocol,
            ],
          )
        }),
      ),

    /** False (and nothing written) when the id is not among those sent to the device. */
    recordConfigApplied: (tenant: string, device: string, report: ConfigReport): Promise<boolean> =>
      read(async () => {
        const { rows } = await db.query(
          `UPDATE device_config_state SET applied_id = $3, status_code = $4, reason_phrase = $5,
             applied_at = $6, applied_protocol = $7
           WHERE tenant = $1 AND device = $2 AND sent_ids @> $8::jsonb RETURNING 1`,
          [
            tenant,
            device,
            report.configId,
            report.statusCode,
            report.reasonPhrase,
            report.at.toISOString(),
            report.protocol,
            JSON.stringify([report.configId]),
          ],
        )
        return rows.length > 0
      }),

    getConfigState: (tenant: string, device: string): Promise<ConfigState | undefined> =>
      read(async () => {
        const { rows } = await db.query<StateRow>(
          'SELECT * FROM device_config_state WHERE tenant = $1 AND device = $2',
          [tenant, device],
        )
        return rows[0] === undefined ? undefined : toState(rows[0])
      }),

    configStatus: (tenant: string): Promise<ConfigStatusEntry[]> =>
      read(async () => {
        // Each device counts once, under the id it was sent last.
        const { rows } = await db.query<{
          config_id: string
          applied: number
          rejected: number
          pending: number
        }>(
          `SELECT delivered_id AS config_id,
             count(*) FILTER (WHERE applied_id = delivered_id AND status_code < 400)::integer AS applied,
             count(*) FILTER (WHERE applied_id = delivered_id AND status_code >= 400)::integer AS rejected,
             count(*) FILTER (WHERE applied_id IS DISTINCT FROM delivered_id)::integer AS pending
           FROM device_config_state WHERE tenant = $1 GROUP BY delivered_id ORDER BY delivered_id`,
          [tenant],
        )
        return rows.map((r) => ({
          configId: r.config_id,
          applied: r.applied,
          rejected: r.rejected,
          pending: r.pending,
        }))
      }),
  }
}
