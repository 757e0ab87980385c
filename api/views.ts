// Resources as the API returns them: each field picked by name, so that nothing the registry may
// add later (a hash, an encrypted key) reaches a response by accident.
import type {
  ChannelSchema,
  ConfigDocument,
  ConfigRule,
  Device,
  RouteRule,
  RouteTable,
  Tenant,
} from '../core/registry/model.ts'
import type { ApiTokenView, CredentialView, EffectiveConfig } from '../core/registry/service.ts'

const versioned = (r: { version: number; createdAt: string; updatedAt: string }) => ({
  version: r.version,
  createdAt: r.createdAt,
  updatedAt: r.updatedAt,
})

export function tenantView(t: Tenant) {
  return {
    id: t.id,
    enabled: t.enabled,
    oidc:
      t.oidc === null
        ? null
        : {
            issuer: t.oidc.issuer,
            audience: t.oidc.audience,
            ...(t.oidc.jwksUri === undefined ? {} : { jwksUri: t.oidc.jwksUri }),
            ...(t.oidc.jwks === undefined ? {} : { jwks: t.oidc.jwks.map((k) => ({ ...k }) as never) }),
            rolesClaim: t.oidc.rolesClaim,
          },
    quotas: {
      maxDevices: t.quotas.maxDevices,
      maxMessagesPerSecond: t.quotas.maxMessagesPerSecond,
      maxEventsPerSecond: t.quotas.maxEventsPerSecond,
      maxBytesPerSecond: t.quotas.maxBytesPerSecond,
      maxPayloadBytes: t.quotas.maxPayloadBytes,
      maxFileStorageBytes: t.quotas.maxFileStorageBytes,
      maxFiles: t.quotas.maxFiles,
    },
    authMethods: [...t.authMethods],
    trustAnchors: t.trustAnchors.map((a) => ({
      certificate: a.certificate,
      subject: a.subject,
      fingerprint: a.fingerprint,
      notAfter: a.notAfter,
    })),
    settings: { ...t.settings },
    ...versioned(t),
  }
}

export function deviceView(d: Device) {
  return {
    tenant: d.tenant,
    id: d.id,
    enabled: d.enabled,
    labels: { ...d.labels },
    gateways: [...d.gateways],
    appVersion: d.appVersion,
    lastSeen: d.lastSeen,
    ...versioned(d),
  }
}

export function credentialView(c: CredentialView) {
  const base = {
    tenant: c.tenant,
    device: c.device,
    id: c.id,
    enabled: c.enabled,
    expiresAt: c.expiresAt,
    ...versioned(c),
  }
  switch (c.type) {
    case 'password':
      return { type: 'password' as const, ...base }
    case 'x509':
      return {
        type: 'x509' as const,
        match: c.match,
        subjectCn: c.subjectCn,
        fingerprint: c.fingerprint,
        ...base,
      }
    case 'psk':
      return { type: 'psk' as const, identity: c.identity, ...base }
    case 'token':
      return { type: 'token' as const, ...base }
  }
}

export function apiTokenView(t: ApiTokenView) {
  return {
    tenant: t.tenant,
    id: t.id,
    name: t.name,
    role: t.role,
    expiresAt: t.expiresAt,
    ...versioned(t),
  }
}

export function channelSchemaView(s: ChannelSchema) {
  return { tenant: s.tenant, channel: s.channel, schema: structuredClone(s.schema), ...versioned(s) }
}

function routeRuleView(r: RouteRule) {
  const { channel, type, labels } = r.match
  return {
    name: r.name,
    match: {
      ...(channel === undefined ? {} : { channel }),
      ...(type === undefined ? {} : { type }),
      ...(labels === undefined ? {} : { labels: { ...labels } }),
    },
    actions: r.actions.map((a) => ({ ...a })),
  }
}

export function routeTableView(t: RouteTable) {
  return { tenant: t.tenant, rules: t.rules.map(routeRuleView), ...versioned(t) }
}

export function configDocumentView(d: ConfigDocument) {
  return { tenant: d.tenant, ...d.scope, config: { ...d.document }, ...versioned(d) }
}

export function configRuleView(r: ConfigRule) {
  return {
    tenant: r.tenant,
    rule: r.name,
    selector: { ...r.selector },
    priority: r.priority,
    config: { ...r.document },
    ...versioned(r),
  }
}

export function effectiveConfigView(e: EffectiveConfig) {
  return {
    tenant: e.tenant,
    device: e.device,
    appVersion: e.appVersion,
    configId: e.configId,
    config: { ...e.config },
    levels: e.levels.map((l) => ({ ...l })),
    state:
      e.state === null
        ? null
        : {
            delivered: { ...e.state.delivered },
            applied: e.state.applied === null ? null : { ...e.state.applied },
          },
  }
}
