// Revocation: every registry change reaches every instance's cache (core/registry/auth.ts), and
// then here, where the live sessions it concerns are checked again and closed if they no longer
// hold — a credential changed or deleted, a device or tenant disabled or deleted, the method no
// longer allowed, a certificate no longer trusted. Passwords are not kept to be checked again:
// the session of a changed credential simply ends, and the device reconnects with the new one.
import type { Logger } from '../../core/log.ts'
import type { Device, RegistryChange, Tenant } from '../../core/registry/model.ts'
import { verifyChain } from './certificates.ts'
import type { Connection, ConnectionTable, Session } from './connection.ts'

export interface RevocationDeps {
  readonly table: ConnectionTable
  readonly tenant: (id: string) => Promise<Tenant | undefined>
  readonly findDevice: (tenant: string, id: string) => Promise<Device | undefined>
  readonly close: (conn: Connection, reason: string) => void
  /** Keeps the issuer → tenants index current. */
  readonly tenantChanged: (tenant: string) => Promise<void>
  readonly log: Logger
  readonly now?: () => Date
}

/** Why the session no longer holds under the tenant as it is now, or undefined when it does. */
export function tenantRefusal(session: Session, tenant: Tenant | undefined, now: Date): string | undefined {
  if (tenant === undefined) return 'tenant deleted'
  if (!tenant.enabled) return 'tenant disabled'
  if (!tenant.authMethods.includes(session.method)) return `method ${session.method} no longer allowed`
  if (session.chain !== undefined && !verifyChain(session.chain, tenant.trustAnchors, now))
    return 'certificate no longer trusted'
  return undefined
}

export function createRevocation(deps: RevocationDeps): (change: RegistryChange) => void {
  const { table, log } = deps
  const now = deps.now ?? (() => new Date())

  function sessionsOf(change: RegistryChange): Array<[Connection, Session]> {
    const found: Array<[Connection, Session]> = []
    for (const conn of table.all()) {
      const s = conn.session
      if (s === undefined || conn.closed || s.tenant !== change.tenant) continue
      if (change.resource === 'tenant' || s.device === change.device) found.push([conn, s])
    }
    return found
  }

  function revoke(conn: Connection, session: Session, why: string): void {
    log.info(
      { tenant: session.tenant, device: session.device, connection: conn.id, why },
      'MQTT session revoked',
    )
    deps.close(conn, 'revoked')
  }

  async function recheck(change: RegistryChange): Promise<void> {
    // Neither an API token nor a desired configuration is what a device session stands on.
    if (change.resource === 'api-token' || change.resource === 'config') return
    if (change.resource === 'tenant') await deps.tenantChanged(change.tenant)
    const sessions = sessionsOf(change)
    if (sessions.length === 0) return
    if (change.resource === 'credential') {
      // A new credential takes nothing away (and may be the one a session just connected with).
      if (change.op === 'created') return
      for (const [conn, s] of sessions)
        if (s.credentialId === change.id) revoke(conn, s, `credential ${change.op}`)
      return
    }
    if (change.resource === 'device') {
      const device = await deps.findDevice(change.tenant, change.device ?? '')
      const why = device === undefined ? 'device deleted' : device.enabled ? undefined : 'device disabled'
      if (why !== undefined) for (const [conn, s] of sessions) revoke(conn, s, why)
      return
    }
    const tenant = await deps.tenant(change.tenant)
    for (const [conn, s] of sessions) {
      const why = tenantRefusal(s, tenant, now())
      if (why !== undefined) revoke(conn, s, why)
    }
  }

  return (change) => {
    recheck(change).catch((err: unknown) => {
      // Could not tell whether they still hold: end them, a reconnect is checked afresh.
      log.warn({ err, change }, 'registry re-check failed; closing the sessions it concerns')
      for (const [conn, s] of sessionsOf(change)) revoke(conn, s, 're-check failed')
    })
  }
}
