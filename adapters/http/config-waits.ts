// Long polls for a configuration change (`GET /v1/config?wait=<s>`): a waiting request sleeps until
// a registry change that may give its device another configuration id (any `config` change of the
// tenant, or a change of the device), its deadline, or its abort. Registry changes arrive on the
// registry topic, so a change written through another process's API wakes it too.
import type { RegistryChange } from '../../core/registry/model.ts'

interface Waiter {
  readonly device: string
  readonly wake: () => void
}

export function createConfigWaits() {
  const byTenant = new Map<string, Set<Waiter>>()

  return {
    /** Resolves true on a relevant change, false when `ms` passed or `signal` aborted first. */
    next(tenant: string, device: string, ms: number, signal: AbortSignal): Promise<boolean> {
      if (signal.aborted || ms <= 0) return Promise.resolve(false)
      return new Promise((resolve) => {
        let waiters = byTenant.get(tenant)
        if (waiters === undefined) byTenant.set(tenant, (waiters = new Set()))
        const done = (changed: boolean): void => {
          clearTimeout(timer)
          signal.removeEventListener('abort', aborted)
          waiters.delete(waiter)
          if (waiters.size === 0) byTenant.delete(tenant)
          resolve(changed)
        }
        const aborted = (): void => done(false)
        const waiter: Waiter = { device, wake: () => done(true) }
        const timer = setTimeout(() => done(false), ms)
        signal.addEventListener('abort', aborted, { once: true })
        waiters.add(waiter)
      })
    },

    changed(change: RegistryChange): void {
      if (change.resource !== 'config' && change.resource !== 'device') return
      const waiters = byTenant.get(change.tenant)
      if (waiters === undefined) return
      for (const waiter of [...waiters]) {
        if (change.device === undefined || change.device === waiter.device) waiter.wake()
      }
    },
  }
}

export type ConfigWaits = ReturnType<typeof createConfigWaits>
