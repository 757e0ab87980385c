// CONNECT authentication of application clients: the user name is the tenant, the password a
// bearer credential of that tenant (API token, OIDC access token) or the admin token, checked by
// the management API's authenticator; the reader role is enough to read events, sending commands
// takes manager or admin.
import type { BearerAuthenticator } from '../../core/auth/bearer.ts'
import { allows } from '../../core/auth/principal.ts'
import { isTenantId } from '../../core/events/ids.ts'
import type { Tenant } from '../../core/registry/model.ts'

/** CONNACK return codes (MQTT 3.1.1 §3.2.2.3). */
export const CONNACK = { serverUnavailable: 3, badCredentials: 4, notAuthorized: 5 } as const
export type ConnackCode = (typeof CONNACK)[keyof typeof CONNACK]

/** Why a CONNECT was refused; also the `reason` label of the refusals counter. */
export type ConnectRefusal =
  | 'missing-credentials'
  | 'bad-credentials'
  | 'not-authorized'
  | 'connection-limit'
  | 'unavailable'
  | 'shutting-down'

/** 4 when the credentials are missing or unknown, 5 when they are valid but not for this tenant. */
export function connackFor(reason: ConnectRefusal): ConnackCode {
  switch (reason) {
    case 'missing-credentials':
    case 'bad-credentials':
      return CONNACK.badCredentials
    case 'not-authorized':
    case 'connection-limit':
      return CONNACK.notAuthorized
    case 'unavailable':
    case 'shutting-down':
      return CONNACK.serverUnavailable
  }
}

/** The error aedes's authenticate callback takes: its returnCode becomes the CONNACK's. */
export function connackError(reason: ConnectRefusal): Error & { returnCode: ConnackCode } {
  return Object.assign(new Error(`connection refused: ${reason}`), { returnCode: connackFor(reason) })
}

export type AppLogin =
  | {
      readonly kind: 'accepted'
      readonly tenant: string
      readonly subject: string
      /** The credential holds manager or admin on the tenant: it may publish commands. */
      readonly canCommand: boolean
      /** When the credential stops being valid (ms since the epoch); undefined: it does not expire. */
      readonly expiresAt: number | undefined
    }
  | { readonly kind: 'refused'; readonly reason: ConnectRefusal }

export interface AppAuthDeps {
  readonly bearer: BearerAuthenticator
  readonly tenant: (id: string) => Promise<Tenant | undefined>
}

/** Throws AUTH_UNAVAILABLE (CONNACK 3) when the registry or the issuer's keys cannot be reached. */
export function createAppAuthenticator(deps: AppAuthDeps) {
  return async (username: string | undefined, password: Buffer | undefined): Promise<AppLogin> => {
    if (username === undefined || username === '' || password === undefined || password.length === 0)
      return refused('missing-credentials')
    if (!isTenantId(username)) return refused('bad-credentials')
    const outcome = await deps.bearer.authenticate(password.toString('utf8'), username)
    if (outcome.kind === 'rejected') return refused('bad-credentials')
    if (outcome.kind === 'foreign') return refused('not-authorized')
    const { principal } = outcome
    if (!allows(principal, username, 'reader')) return refused('not-authorized')
    // The admin token names any tenant: only existing, enabled ones have events to read.
    const tenant = await deps.tenant(username)
    if (tenant === undefined || !tenant.enabled) return refused('not-authorized')
    const expiresAt = (principal as { readonly expiresAt?: number | undefined }).expiresAt
    return {
      kind: 'accepted',
      tenant: username,
      subject: principal.subject,
      canCommand: allows(principal, username, 'manager'),
      expiresAt,
    }
  }
}

export type AppAuthenticator = ReturnType<typeof createAppAuthenticator>

const refused = (reason: ConnectRefusal): AppLogin => ({ kind: 'refused', reason })
