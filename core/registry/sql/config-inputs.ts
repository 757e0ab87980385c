// What effective configurations are made of, read for many devices of one tenant at once (three
// queries whatever their number): the API's effective view, an adapter pushing a change to every
// connected device, and the config.changed fan-out's pages all merge from these.
import type { ConfigInputs, ConfigLevelDocument } from '../model.ts'
import type { SqlClient, SqlDatabase } from './client.ts'
import type { ConfigRuleRow } from './rows.ts'
import { RULES_IN_ORDER, toConfigRule } from './rows.ts'

const NEVER_WRITTEN: ConfigLevelDocument = { document: {}, version: 0 }

/** The inputs of `devices` (unknown ones left out), plus the documents of `appVersions` too. */
export async function loadConfigInputs(
  db: SqlDatabase | SqlClient,
  tenant: string,
  devices: readonly string[],
  appVersions: readonly string[] = [],
): Promise<ConfigInputs> {
  const { rows: found } = await db.query<{
    id: string
    app_version: string | null
    labels: Record<string, string>
    document: Record<string, unknown> | null
    version: number | null
  }>(
    `SELECT d.id, d.app_version, d.labels, c.document, c.version FROM devices d
     LEFT JOIN device_configs c ON c.tenant = d.tenant AND c.device = d.id
     WHERE d.tenant = $1 AND d.id = ANY($2::text[])`,
    [tenant, devices],
  )
  const versions = new Set(appVersions)
  for (const row of found) if (row.app_version !== null) versions.add(row.app_version)
  const { rows: documents } = await db.query<{
    app_version: string
    document: Record<string, unknown>
    version: number
  }>(
    'SELECT app_version, document, version FROM config_documents WHERE tenant = $1 AND app_version = ANY($2::text[])',
    [tenant, ['', ...versions]],
  )
  const { rows: rules } = await db.query<ConfigRuleRow>(RULES_IN_ORDER, [tenant])
  const levels = new Map(documents.map((d) => [d.app_version, { document: d.document, version: d.version }]))
  return {
    tenant: levels.get('') ?? NEVER_WRITTEN,
    appVersions: new Map([...versions].map((v) => [v, levels.get(v) ?? NEVER_WRITTEN])),
    rules: rules.map(toConfigRule),
    devices: new Map(
      found.map((row) => [
        row.id,
        {
          appVersion: row.app_version,
          labels: row.labels,
          own: row.document === null ? NEVER_WRITTEN : { document: row.document, version: row.version ?? 0 },
        },
      ]),
    ),
  }
}
