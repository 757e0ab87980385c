// Authorization at processing time: the tenant and the device exist and are enabled now (not only
// when the adapter accepted the event), a sender other than the device is one of its gateways, and
// the credential that authenticated the sender (the event's `credential` attribute) still exists and
// is enabled: revoking a credential also refuses what it got accepted but not yet processed.
import type { Credential, Device, Tenant } from '../../core/registry/model.ts'
import type { Step } from '../step.ts'
import { next, reject } from '../step.ts'

export interface AuthorizeDeps {
  tenant(id: string): Promise<Tenant | undefined>
  findDevice(tenant: string, device: string): Promise<Device | undefined>
  findCredential(tenant: string, device: string, id: string): Promise<Credential | undefined>
}

/** Dead-letter reasons this step gives. */
export const authorizeReasons = [
  'event-unaddressed',
  'tenant-unknown',
  'tenant-disabled',
  'device-unknown',
  'device-disabled',
  'gateway-not-allowed',
  'gateway-unknown',
  'gateway-disabled',
  'credential-revoked',
  'credential-disabled',
] as const

export function createAuthorize(deps: AuthorizeDeps): Step {
  return async (event) => {
    const { tenant: tenantId, device: deviceId, sender } = event.attributes
    if (tenantId === undefined || deviceId === undefined) return reject('event-unaddressed')
    const tenant = await deps.tenant(tenantId)
    if (tenant === undefined) return reject('tenant-unknown')
    if (!tenant.enabled) return reject('tenant-disabled')
    const device = await deps.findDevice(tenantId, deviceId)
    if (device === undefined) return reject('device-unknown')
    if (!device.enabled) return reject('device-disabled')
    if (sender !== undefined && sender !== deviceId) {
      if (!device.gateways.includes(sender)) return reject('gateway-not-allowed')
      // A gateway revoked after the adapter accepted its message no longer speaks for anyone.
      const gateway = await deps.findDevice(tenantId, sender)
      if (gateway === undefined) return reject('gateway-unknown')
      if (!gateway.enabled) return reject('gateway-disabled')
    }
    const credentialId = event.attributes['credential']
    if (credentialId !== undefined) {
      // The credential belongs to whoever authenticated: the gateway when one sent the event.
      const credential = await deps.findCredential(tenantId, sender ?? deviceId, credentialId)
      if (credential === undefined) return reject('credential-revoked')
      if (!credential.enabled) return reject('credential-disabled')
    }
    return next
  }
}
