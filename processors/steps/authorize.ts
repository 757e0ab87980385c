// Authorization at processing time: the tenant and the device exist and are enabled now (not only
// when the adapter accepted the event), and a sender other than the device is one of its gateways.
import type { Device, Tenant } from '../../core/registry/model.ts'
import type { Step } from '../step.ts'
import { next, reject } from '../step.ts'

export interface AuthorizeDeps {
  tenant(id: string): Promise<Tenant | undefined>
  findDevice(tenant: string, device: string): Promise<Device | undefined>
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
    return next
  }
}
