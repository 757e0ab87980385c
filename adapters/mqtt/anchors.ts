// Which tenants trust a CA, by the CA's subject name: how a device that presents a client
// certificate without a username finds its tenant (the issuer of its certificate). Loaded once
// from the registry and kept current from its change events.
import type { Logger } from '../../core/log.ts'
import type { ListOptions, Page, Tenant } from '../../core/registry/model.ts'
import { anchorCertificate } from './certificates.ts'

export interface AnchorIndex {
  /** Tenants with a trust anchor whose subject is `issuer` (X509Certificate.issuer form). */
  tenantsFor(issuer: string): readonly string[]
  /** Reads every tenant's anchors (paged). */
  load(): Promise<void>
  /** Re-reads one tenant after it changed (or was deleted). */
  refresh(tenant: string): Promise<void>
}

export interface AnchorIndexDeps {
  readonly listTenants: (options: ListOptions) => Promise<Page<Tenant>>
  readonly tenant: (id: string) => Promise<Tenant | undefined>
  readonly log: Logger
}

export function createAnchorIndex(deps: AnchorIndexDeps): AnchorIndex {
  const bySubject = new Map<string, Set<string>>()
  const byTenant = new Map<string, string[]>()

  function set(tenant: string, value: Tenant | undefined): void {
    for (const subject of byTenant.get(tenant) ?? []) {
      const tenants = bySubject.get(subject)
      tenants?.delete(tenant)
      if (tenants?.size === 0) bySubject.delete(subject)
    }
    byTenant.delete(tenant)
    if (value === undefined || value.trustAnchors.length === 0) return
    const subjects: string[] = []
    for (const anchor of value.trustAnchors) {
      const subject = anchorCertificate(anchor)?.subject
      if (subject === undefined) continue
      subjects.push(subject)
      let tenants = bySubject.get(subject)
      if (tenants === undefined) bySubject.set(subject, (tenants = new Set()))
      tenants.add(tenant)
    }
    byTenant.set(tenant, subjects)
  }

  return {
    tenantsFor: (issuer) => [...(bySubject.get(issuer) ?? [])],
    async load() {
      let after: string | undefined
      let count = 0
      do {
        const page = await deps.listTenants({ limit: 1000, after })
        for (const tenant of page.items) set(tenant.id, tenant)
        count += page.items.length
        after = page.next ?? undefined
      } while (after !== undefined)
      deps.log.debug({ tenants: count, issuers: bySubject.size }, 'trust anchor index loaded')
    },
    async refresh(tenant) {
      set(tenant, await deps.tenant(tenant))
    },
  }
}
