// Who a device request is from and for, shared by `POST /v1/<channel>` and `GET /v1/command`: the
// Authorization header checked against the registry, and the `?as=` device a gateway speaks for
// (it must exist, be enabled and list the gateway).
import type { DeviceAuthenticator } from '../../core/registry/auth.ts'
import type { Device } from '../../core/registry/model.ts'
import { credentialsOf } from './map.ts'
import type { ProblemKind } from './outcome.ts'
import { authRefusal } from './outcome.ts'

export interface Caller {
  readonly tenant: string
  /** The authenticated device. */
  readonly sender: string
  readonly credentialId: string
}

export type Refusal = { readonly ok: false; readonly kind: ProblemKind; readonly detail: string }
type Checked<T> = ({ readonly ok: true } & T) | Refusal

const refusal = (kind: ProblemKind, detail: string): Refusal => ({ ok: false, kind, detail })

export async function authenticate(
  auth: Pick<DeviceAuthenticator, 'byPassword' | 'byToken'>,
  authorization: string | undefined,
): Promise<Checked<{ caller: Caller }>> {
  const credentials = credentialsOf(authorization)
  if (credentials.kind === 'none') {
    return refusal('unauthenticated', 'send Basic <device>@<tenant>:<password> or a Bearer device token')
  }
  if (credentials.kind === 'malformed')
    return refusal('unauthenticated', 'the Authorization header is malformed')
  const who =
    credentials.kind === 'token'
      ? await auth.byToken(credentials.token)
      : await auth.byPassword(credentials.username, credentials.password)
  if (!who.ok) {
    const refused = authRefusal(who.reason)
    return refusal(refused.kind, refused.detail)
  }
  return { ok: true, caller: { tenant: who.tenant, sender: who.device, credentialId: who.credentialId } }
}

/** The device the request is for: the caller, or the `?as=` device that lists it as a gateway. */
export async function deviceFor(
  findDevice: (tenant: string, device: string) => Promise<Device | undefined>,
  caller: Caller,
  as: string | undefined,
): Promise<Checked<{ device: string }>> {
  const device = as === undefined || as === caller.sender ? caller.sender : as
  if (device !== caller.sender) {
    const target = await findDevice(caller.tenant, device)
    if (target === undefined || !target.enabled || !target.gateways.includes(caller.sender)) {
      return refusal(
        'forbidden',
        `device ${device} does not exist, is disabled or does not list ${caller.sender} as a gateway`,
      )
    }
  }
  return { ok: true, device }
}
