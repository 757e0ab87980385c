// The processing operations of the RegistryService: per-channel JSON Schemas of event data and the
// tenant's route table, both checked in full before the store sees them.
import { isChannel } from '../events/ids.ts'
import { compileSchema } from './json-schema.ts'
import type { Tenant } from './model.ts'
import type { RegistryService } from './service.ts'
import { notFound } from './service-credentials.ts'
import type { RegistryStore } from './store.ts'
import { checkRouteRules } from './validate-routes.ts'
import { checkListOptions, checkTenantId, invalid } from './validate.ts'

export interface ProcessingContext {
  readonly store: RegistryStore
  /** Signals a successful write and passes the value through. */
  readonly changed: <T>(value: T) => T
  readonly requireTenant: (id: string) => Promise<Tenant>
}

type ProcessingOperations = Pick<
  RegistryService,
  | 'putChannelSchema'
  | 'getChannelSchema'
  | 'listChannelSchemas'
  | 'deleteChannelSchema'
  | 'getRouteTable'
  | 'putRouteTable'
>

export function checkChannel(value: unknown, field = 'channel'): string {
  if (typeof value !== 'string' || !isChannel(value)) {
    throw invalid(field, 'must be 1-8 levels of A-Z a-z 0-9 . _ ~ - separated by /, at most 256 characters')
  }
  return value
}

const schemaOf = (tenant: string, channel: string): string =>
  `schema of channel ${channel} of tenant ${tenant}`

export function processingOperations(ctx: ProcessingContext): ProcessingOperations {
  const { store, changed, requireTenant } = ctx
  return {
    async putChannelSchema(tenant, channel, schema, pre) {
      checkTenantId(tenant)
      checkChannel(channel)
      // Compiling proves the schema usable (and bounded) before anything is written.
      compileSchema(schema)
      return changed(await store.putChannelSchema(tenant, channel, structuredClone(schema), pre))
    },
    async getChannelSchema(tenant, channel) {
      const found = await store.getChannelSchema(checkTenantId(tenant), checkChannel(channel))
      if (found === undefined) throw notFound(schemaOf(tenant, channel))
      return found
    },
    async listChannelSchemas(tenant, options) {
      const page = checkListOptions(options)
      await requireTenant(tenant)
      return store.listChannelSchemas(tenant, page)
    },
    async deleteChannelSchema(tenant, channel, pre) {
      await store.deleteChannelSchema(checkTenantId(tenant), checkChannel(channel), pre)
      changed(undefined)
    },
    async getRouteTable(tenant) {
      return store.getRouteTable(checkTenantId(tenant))
    },
    async putRouteTable(tenant, rules, pre) {
      checkTenantId(tenant)
      const checked = checkRouteRules(rules)
      return changed(await store.putRouteTable(tenant, checked, pre))
    },
  }
}
