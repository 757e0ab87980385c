// Configuration rule statements: a tenant's label-selector rules (docs/config.md, "Rules"), listed in
// merge order, created or replaced under a precondition within the per-tenant limit, and deleted;
// every write records its config.changed fan-out job in the same transaction.
import { TributaryError } from '../../errors.ts'
import { CONFIG_RULES_MAX } from '../device-config.ts'
import type { ConfigRule, ConfigRuleSpec } from '../model.ts'
import type { Precondition } from '../store.ts'
import type { SqlClient, SqlDatabase } from './client.ts'
import { recordConfigFanout } from './config-fanout.ts'
import { checkPutVersion, lockTenant, putVersion } from './put.ts'
import type { ConfigRuleRow } from './rows.ts'
import { RULES_IN_ORDER, toConfigRule } from './rows.ts'
import { expectedVersion, inserted, noRowWritten, now, read, tenantName, write } from './write.ts'

const ruleName = (tenant: string, name: string): string =>
  `configuration rule ${JSON.stringify(name)} of ${tenantName(tenant)}`

const change = (op: 'created' | 'updated' | 'deleted', tenant: string, name: string, version: number) =>
  ({ op, resource: 'config', tenant, id: `rules/${name}`, version }) as const

async function current(tx: SqlClient, tenant: string, name: string): Promise<ConfigRuleRow | undefined> {
  const { rows } = await tx.query<ConfigRuleRow>(
    'SELECT * FROM config_rules WHERE tenant = $1 AND name = $2 FOR UPDATE',
    [tenant, name],
  )
  return rows[0]
}

export function configRuleStatements(db: SqlDatabase) {
  return {
    listConfigRules: (tenant: string): Promise<ConfigRule[]> =>
      read(async () => (await db.query<ConfigRuleRow>(RULES_IN_ORDER, [tenant])).rows.map(toConfigRule)),

    getConfigRule: (tenant: string, name: string): Promise<ConfigRule | undefined> =>
      read(async () => {
        const { rows } = await db.query<ConfigRuleRow>(
          'SELECT * FROM config_rules WHERE tenant = $1 AND name = $2',
          [tenant, name],
        )
        return rows[0] === undefined ? undefined : toConfigRule(rows[0])
      }),

    putConfigRule: async (
      tenant: string,
      name: string,
      spec: ConfigRuleSpec,
      pre?: Precondition,
    ): Promise<ConfigRule> => {
      const ifVersion = putVersion(pre)
      return write(db, {}, async (tx) => {
        // The tenant lock makes the count below and the insert one step for every writer.
        await lockTenant(tx, tenant)
        const before = await current(tx, tenant, name)
        checkPutVersion(before?.version ?? 0, ifVersion, ruleName(tenant, name))
        const at = now()
        const values = [
          tenant,
          name,
          JSON.stringify(spec.selector),
          spec.priority,
          JSON.stringify(spec.document),
          at,
        ]
        let rows: ConfigRuleRow[]
        if (before === undefined) {
          const counted = await tx.query<{ n: number }>(
            'SELECT count(*)::integer AS n FROM config_rules WHERE tenant = $1',
            [tenant],
          )
          const count = counted.rows[0]?.n ?? 0
          if (count >= CONFIG_RULES_MAX) {
            throw new TributaryError(
              'REGISTRY_QUOTA_EXCEEDED',
              `${tenantName(tenant)} has ${count} configuration rules, the most a tenant may have`,
              { details: { maxConfigRules: CONFIG_RULES_MAX } },
            )
          }
          ;({ rows } = await tx.query<ConfigRuleRow>(
            `INSERT INTO config_rules (tenant, name, selector, priority, document, version, created_at, updated_at)
             VALUES ($1, $2, $3::jsonb, $4, $5::jsonb, 1, $6, $6) RETURNING *`,
            values,
          ))
        } else {
          ;({ rows } = await tx.query<ConfigRuleRow>(
            `UPDATE config_rules SET selector = $3::jsonb, priority = $4, document = $5::jsonb,
               version = version + 1, updated_at = $6
             WHERE tenant = $1 AND name = $2 RETURNING *`,
            values,
          ))
        }
        const written = toConfigRule(inserted(rows))
        await recordConfigFanout(tx, tenant, { kind: 'rule', rule: name, previous: before ?? null })
        return {
          result: written,
          change: change(before === undefined ? 'created' : 'updated', tenant, name, written.version),
        }
      })
    },

    deleteConfigRule: async (tenant: string, name: string, pre?: Precondition): Promise<void> => {
      const ifVersion = expectedVersion(pre?.ifVersion)
      return write(db, {}, async (tx) => {
        const { rows } = await tx.query<ConfigRuleRow>(
          `DELETE FROM config_rules WHERE tenant = $1 AND name = $2 AND ($3::integer IS NULL OR version = $3)
           RETURNING *`,
          [tenant, name, ifVersion],
        )
        const row =
          rows[0] ??
          (await noRowWritten(
            tx,
            {
              sql: 'SELECT version FROM config_rules WHERE tenant = $1 AND name = $2',
              params: [tenant, name],
            },
            ruleName(tenant, name),
            pre?.ifVersion,
          ))
        await recordConfigFanout(tx, tenant, { kind: 'rule', rule: name, previous: row })
        return { result: undefined, change: change('deleted', tenant, name, row.version) }
      })
    },
  }
}
