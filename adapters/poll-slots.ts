// The bound on requests held open for a command (HTTP `?ct=` and `GET /v1/command`, CoAP `?ct=`
// and observations of /v1/commands), per adapter: each holds a sink and a socket or state, so their
// number is capped in all, per tenant and per device (STYLE.md 12). A slot is taken before the
// message is made durable, so a refused request wrote nothing and may simply be retried.

/** Requests waiting for a command on one listener. */
export const MAX_POLLS = 10_000
/** One tenant's share of them. */
export const MAX_POLLS_PER_TENANT = 1_000
/** A device needs one; a few allow for a retry while the old request is still being torn down. */
export const MAX_POLLS_PER_DEVICE = 4

export interface PollLimits {
  readonly total: number
  readonly perTenant: number
  readonly perDevice: number
}

export const POLL_LIMITS: PollLimits = {
  total: MAX_POLLS,
  perTenant: MAX_POLLS_PER_TENANT,
  perDevice: MAX_POLLS_PER_DEVICE,
}

export type Slot =
  | { readonly ok: true; release(): void }
  /** `all`: the listener is full (503); `tenant`/`device`: that one is over its share (429). */
  | { readonly ok: false; readonly scope: 'all' | 'tenant' | 'device' }

export interface PollSlots {
  take(tenant: string, device: string): Slot
  /** Slots held now. */
  readonly active: number
}

export function createPollSlots(limits: PollLimits = POLL_LIMITS): PollSlots {
  const tenants = new Map<string, number>()
  const devices = new Map<string, number>()
  let active = 0
  const add = (map: Map<string, number>, key: string, by: number): void => {
    const n = (map.get(key) ?? 0) + by
    if (n <= 0) map.delete(key)
    else map.set(key, n)
  }
  return {
    get active() {
      return active
    },
    take(tenant, device) {
      const deviceKey = `${tenant}/${device}`
      if (active >= limits.total) return { ok: false, scope: 'all' }
      if ((tenants.get(tenant) ?? 0) >= limits.perTenant) return { ok: false, scope: 'tenant' }
      if ((devices.get(deviceKey) ?? 0) >= limits.perDevice) return { ok: false, scope: 'device' }
      active++
      add(tenants, tenant, 1)
      add(devices, deviceKey, 1)
      let released = false
      return {
        ok: true,
        release() {
          if (released) return
          released = true
          active--
          add(tenants, tenant, -1)
          add(devices, deviceKey, -1)
        },
      }
    },
  }
}
