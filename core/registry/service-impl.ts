// The RegistryService on a RegistryStore: checks every input before writing, hashes or encrypts
// secrets on the way in, strips them from every view on the way out, and nudges the outbox relay.
import { TributaryError, isTributaryError } from '../errors.ts'
import type { ApiToken, Versioned } from './model.ts'
import type { Secrets } from './secrets.ts'
import type { ApiTokenView, RegistryService } from './service.ts'
import type { Precondition, RegistryStore } from './store.ts'
import { MERGE_ATTEMPTS, credentialOperations, notFound } from './service-credentials.ts'
import { configOperations } from './service-configs.ts'
import { processingOperations } from './service-processing.ts'
import { subscriptionOperations } from './service-subscriptions.ts'
import {
  DEFAULT_DEVICE_SPEC,
  LIMITS,
  apiTokenExpiry,
  checkAppVersion,
  checkDeviceId,
  checkLabels,
  checkListOptions,
  checkOpaqueId,
  checkRole,
  checkTenantId,
  checkText,
  deviceSpec,
  onlyKeys,
} from './validate.ts'
import { DEFAULT_TENANT_SPEC, tenantSpec } from './validate-tenant.ts'

export { credentialView, pskIdentity } from './service-credentials.ts'
export {
  decryptSubscriptionSecret,
  subscriptionSecretContext,
  subscriptionView,
} from './service-subscriptions.ts'

export interface RegistryServiceDeps {
  readonly store: RegistryStore
  readonly secrets: Secrets
  /** Called after every successful write (nudges the outbox relay). */
  readonly onChange?: (() => void) | undefined
  readonly now?: (() => Date) | undefined
  /**
   * TRIBUTARY_WEBHOOK_ALLOW_PRIVATE: tenant-chosen URLs (webhooks, `oidc.jwksUri`) may name
   * loopback, link-local, private and special hosts (default false).
   */
  readonly allowPrivateTargets?: boolean | undefined
}

export function apiTokenView(token: ApiToken): ApiTokenView {
  const { tokenHash: _hash, ...view } = token
  return view
}

export function createRegistryService(deps: RegistryServiceDeps): RegistryService {
  const { store, secrets } = deps
  const now = deps.now ?? (() => new Date())
  const targets = { allowPrivateTargets: deps.allowPrivateTargets ?? false }

  const changed = <T>(value: T): T => {
    deps.onChange?.()
    return value
  }

  async function requireTenant(id: string) {
    const tenant = await store.getTenant(checkTenantId(id))
    if (tenant === undefined) throw notFound(`tenant ${id}`)
    return tenant
  }

  async function requireDevice(tenant: string, id: string) {
    const device = await store.getDevice(checkTenantId(tenant), checkDeviceId(id))
    if (device === undefined) throw notFound(`device ${id} of tenant ${tenant}`)
    return device
  }

  /**
   * Applies `write` to the current resource under its version. With If-Match the caller's version
   * must hold; without it a concurrent writer makes us re-read and merge again, so no field another
   * writer just set is lost to a stale read.
   */
  async function update<T extends Versioned>(
    what: string,
    read: () => Promise<T | undefined>,
    write: (current: T, pre: Precondition) => Promise<T>,
    pre?: Precondition,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const current = await read()
      if (current === undefined) throw notFound(what)
      if (pre?.ifVersion !== undefined && pre.ifVersion !== current.version) {
        throw new TributaryError('REGISTRY_VERSION_MISMATCH', `${what} is at version ${current.version}`, {
          details: { expected: pre.ifVersion, actual: current.version },
        })
      }
      try {
        return changed(await write(current, { ifVersion: pre?.ifVersion ?? current.version }))
      } catch (err) {
        const retry = pre?.ifVersion === undefined && attempt < MERGE_ATTEMPTS
        if (!retry || !isTributaryError(err, 'REGISTRY_VERSION_MISMATCH')) throw err
      }
    }
  }

  return {
    async createTenant(id, input) {
      const spec = tenantSpec(input, DEFAULT_TENANT_SPEC, now(), targets)
      return changed(await store.createTenant(checkTenantId(id), spec))
    },
    getTenant: requireTenant,
    async listTenants(options) {
      return store.listTenants(checkListOptions(options))
    },
    async updateTenant(id, input, pre) {
      checkTenantId(id)
      return update(
        `tenant ${id}`,
        () => store.getTenant(id),
        (current, version) => store.updateTenant(id, tenantSpec(input, current, now(), targets), version),
        pre,
      )
    },
    async deleteTenant(id, pre) {
      await store.deleteTenant(checkTenantId(id), pre)
      changed(undefined)
    },

    async createDevice(tenant, id, input) {
      checkTenantId(tenant)
      const spec = deviceSpec(input, DEFAULT_DEVICE_SPEC, checkDeviceId(id))
      await requireTenant(tenant)
      return changed(await store.createDevice(tenant, id, spec))
    },
    getDevice: requireDevice,
    async listDevices(tenant, options) {
      const page = checkListOptions(options)
      const labels = options?.labels === undefined ? undefined : checkLabels(options.labels, 'labels')
      await requireTenant(tenant)
      return store.listDevices(tenant, { ...page, ...(labels === undefined ? {} : { labels }) })
    },
    async updateDevice(tenant, id, input, pre) {
      checkTenantId(tenant)
      checkDeviceId(id)
      return update(
        `device ${id} of tenant ${tenant}`,
        () => store.getDevice(tenant, id),
        (current, version) => store.updateDevice(tenant, id, deviceSpec(input, current, id), version),
        pre,
      )
    },
    async reportAppVersion(tenant, id, appVersion) {
      const reported = checkAppVersion(appVersion)
      const current = await requireDevice(tenant, id)
      if (current.appVersion === reported) return current
      return update(
        `device ${id} of tenant ${tenant}`,
        () => store.getDevice(tenant, id),
        (device, version) =>
          store.updateDevice(tenant, id, deviceSpec({ appVersion: reported }, device, id), version),
      )
    },
    async deleteDevice(tenant, id, pre) {
      await store.deleteDevice(checkTenantId(tenant), checkDeviceId(id), pre)
      changed(undefined)
    },

    ...credentialOperations({ store, secrets, now, changed, requireDevice, update }),
    ...processingOperations({ store, changed, requireTenant }),
    ...configOperations({ store, changed, requireTenant, requireDevice, now }),
    ...subscriptionOperations({
      store,
      secrets,
      changed,
      requireTenant,
      update,
      allowPrivate: targets.allowPrivateTargets,
    }),

    async createApiToken(tenant, input) {
      checkTenantId(tenant)
      const fields = onlyKeys(input, ['name', 'role', 'expiresAt'], '')
      const name = checkText(fields['name'], 'name', 1, LIMITS.tokenName)
      const role = checkRole(fields['role'])
      const expiresAt = apiTokenExpiry(fields['expiresAt'], now())
      await requireTenant(tenant)
      const { secret, hash } = secrets.newTokenSecret()
      const token = changed(await store.createApiToken({ tenant, name, role, tokenHash: hash, expiresAt }))
      return { token: apiTokenView(token), secret: secrets.formatToken('api', token.id, secret) }
    },
    async getApiToken(tenant, id) {
      const token = await store.getApiToken(checkTenantId(tenant), checkOpaqueId(id))
      if (token === undefined) throw notFound(`API token ${id}`)
      return apiTokenView(token)
    },
    async listApiTokens(tenant, options) {
      const page = checkListOptions(options)
      await requireTenant(tenant)
      const tokens = await store.listApiTokens(tenant, page)
      return { items: tokens.items.map(apiTokenView), next: tokens.next }
    },
    async deleteApiToken(tenant, id, pre) {
      await store.deleteApiToken(checkTenantId(tenant), checkOpaqueId(id), pre)
      changed(undefined)
    },
  }
}
