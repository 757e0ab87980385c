// Doubles for unit tests of the API app: a RegistryService whose methods the test supplies (any
// other call fails the test), and caller lookups with fixed answers.
import type { CallerLookups } from '../../core/auth/bearer.ts'
import type { RegistryService } from '../../core/registry/service.ts'

export function stubRegistry(methods: Partial<RegistryService> = {}): RegistryService {
  return new Proxy(methods as RegistryService, {
    get(target, name: string) {
      const method = (target as unknown as Record<string, unknown>)[name]
      if (method !== undefined) return method
      return () => Promise.reject(new Error(`the test did not expect registry.${name}()`))
    },
  })
}

export const noLookups: CallerLookups = {
  apiToken: () => Promise.resolve(undefined),
  tenant: () => Promise.resolve(undefined),
}
