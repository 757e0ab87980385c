// Rows as both engines return them, and their mapping to the registry's resources. `pg` returns
// bigint as a string and PGlite as a number; both return timestamptz as Date and jsonb parsed.
import type {
  ApiToken,
  AuthMethod,
  ChannelSchema,
  ConfigRule,
  Credential,
  Device,
  OidcSettings,
  Role,
  RouteRule,
  RouteTable,
  Tenant,
  TenantQuotas,
  TrustAnchor,
} from '../model.ts'
import type { NewCredential } from '../store.ts'

export type Timestamp = Date | string

interface VersionedRow {
  version: number
  created_at: Timestamp
  updated_at: Timestamp
}

export interface TenantRow extends VersionedRow {
  id: string
  enabled: boolean
  oidc: OidcSettings | null
  /** Rows written before a quota existed lack its key (see toQuotas). */
  quotas: Partial<TenantQuotas>
  auth_methods: AuthMethod[]
  trust_anchors: TrustAnchor[]
  settings: Record<string, unknown>
}

export interface DeviceRow extends VersionedRow {
  tenant: string
  id: string
  enabled: boolean
  labels: Record<string, string>
  gateways: string[]
  app_version: string | null
  last_seen: Timestamp | null
}

export interface CredentialRow extends VersionedRow {
  id: string
  tenant: string
  device: string
  type: Credential['type']
  enabled: boolean
  expires_at: Timestamp | null
  password_hash: string | null
  match: 'cn' | 'fingerprint' | null
  subject_cn: string | null
  fingerprint: string | null
  identity: string | null
  key_encrypted: string | null
  token_hash: string | null
}

export interface ChannelSchemaRow extends VersionedRow {
  tenant: string
  channel: string
  schema: Record<string, unknown>
}

export interface RouteTableRow extends VersionedRow {
  tenant: string
  rules: RouteRule[]
}

export interface ApiTokenRow extends VersionedRow {
  id: string
  tenant: string
  name: string
  role: Role
  token_hash: string
  expires_at: Timestamp | null
}

export const iso = (value: Timestamp): string =>
  (value instanceof Date ? value : new Date(value)).toISOString()
const isoOrNull = (value: Timestamp | null): string | null => (value === null ? null : iso(value))

const versioned = (row: VersionedRow) => ({
  version: row.version,
  createdAt: iso(row.created_at),
  updatedAt: iso(row.updated_at),
})

/** Quotas added after a tenant was stored read as null (no limit), the default of new tenants too. */
const toQuotas = (q: Partial<TenantQuotas>): TenantQuotas => ({
  maxDevices: q.maxDevices ?? null,
  maxMessagesPerSecond: q.maxMessagesPerSecond ?? null,
  maxEventsPerSecond: q.maxEventsPerSecond ?? null,
  maxBytesPerSecond: q.maxBytesPerSecond ?? null,
  maxPayloadBytes: q.maxPayloadBytes ?? null,
  maxFileStorageBytes: q.maxFileStorageBytes ?? null,
  maxFiles: q.maxFiles ?? null,
})

export function toTenant(row: TenantRow): Tenant {
  return {
    id: row.id,
    enabled: row.enabled,
    oidc: row.oidc,
    quotas: toQuotas(row.quotas),
    authMethods: row.auth_methods,
    trustAnchors: row.trust_anchors,
    settings: row.settings,
    ...versioned(row),
  }
}

export function toDevice(row: DeviceRow): Device {
  return {
    tenant: row.tenant,
    id: row.id,
    enabled: row.enabled,
    labels: row.labels,
    gateways: row.gateways,
    appVersion: row.app_version,
    lastSeen: isoOrNull(row.last_seen),
    ...versioned(row),
  }
}

export function toCredential(row: CredentialRow): Credential {
  const base = {
    tenant: row.tenant,
    device: row.device,
    id: row.id,
    enabled: row.enabled,
    expiresAt: isoOrNull(row.expires_at),
    ...versioned(row),
  }
  // The credentials_material CHECK keeps each type's columns set, so the fallbacks never apply.
  switch (row.type) {
    case 'password':
      return { ...base, type: 'password', passwordHash: row.password_hash ?? '' }
    case 'x509':
      return {
        ...base,
        type: 'x509',
        match: row.match ?? 'cn',
        subjectCn: row.subject_cn,
        fingerprint: row.fingerprint,
      }
    case 'psk':
      return { ...base, type: 'psk', identity: row.identity ?? '', keyEncrypted: row.key_encrypted ?? '' }
    case 'token':
      return { ...base, type: 'token', tokenHash: row.token_hash ?? '' }
  }
}

export function toApiToken(row: ApiTokenRow): ApiToken {
  return {
    tenant: row.tenant,
    id: row.id,
    name: row.name,
    role: row.role,
    tokenHash: row.token_hash,
    expiresAt: isoOrNull(row.expires_at),
    ...versioned(row),
  }
}

export function toChannelSchema(row: ChannelSchemaRow): ChannelSchema {
  return { tenant: row.tenant, channel: row.channel, schema: row.schema, ...versioned(row) }
}

export function toRouteTable(row: RouteTableRow): RouteTable {
  return { tenant: row.tenant, rules: row.rules, ...versioned(row) }
}

/** The type-specific columns of a credential, in the order the INSERT and UPDATE statements use. */
export function credentialMaterial(c: NewCredential): unknown[] {
  //         password_hash    match    subject_cn   fingerprint    identity    key_encrypted    token_hash
  switch (c.type) {
    case 'password':
      return [c.passwordHash, null, null, null, null, null, null]
    case 'x509':
      return [null, c.match, c.subjectCn, c.fingerprint, null, null, null]
    case 'psk':
      return [null, null, null, null, c.identity, c.keyEncrypted, null]
    case 'token':
      return [null, null, null, null, null, null, c.tokenHash]
  }
}

export interface ConfigRuleRow {
  tenant: string
  name: string
  selector: Record<string, string>
  priority: number
  document: Record<string, unknown>
  version: number
  created_at: Timestamp
  updated_at: Timestamp
}

export const toConfigRule = (row: ConfigRuleRow): ConfigRule => ({
  tenant: row.tenant,
  name: row.name,
  selector: row.selector,
  priority: row.priority,
  document: row.document,
  version: row.version,
  createdAt: iso(row.created_at),
  updatedAt: iso(row.updated_at),
})

/** A tenant's rules in merge order (priority, then name). */
export const RULES_IN_ORDER = 'SELECT * FROM config_rules WHERE tenant = $1 ORDER BY priority, name'
