// The configuration operations of the RegistryService: one desired document per level (tenant
// default, application version, device), replaced or merge-patched within the tenant's size bound,
// and a device's effective configuration: the levels merged, with its content-hash id.
import { TributaryError, isTributaryError } from '../errors.ts'
import type { ConfigObject, ConfigValue } from './device-config.ts'
import {
  applyMergePatch,
  checkConfigDocument,
  checkConfigReport,
  checkConfigRule,
  checkRuleName,
  configId,
  configMaxBytes,
  effectiveDocument,
  matchingRules,
  partsOf,
} from './device-config.ts'
import type { ConfigRule, ConfigScope, Device, Tenant } from './model.ts'
import type { RegistryService, ResolvedConfig } from './service.ts'
import { MERGE_ATTEMPTS } from './service-credentials.ts'
import type { RegistryStore } from './store.ts'
import { checkAppVersion, checkDeviceId, checkTenantId, invalid } from './validate.ts'

export interface ConfigContext {
  readonly store: RegistryStore
  readonly changed: <T>(value: T) => T
  readonly requireTenant: (id: string) => Promise<Tenant>
  readonly requireDevice: (tenant: string, id: string) => Promise<Device>
  readonly now: () => Date
}

type ConfigOperations = Pick<
  RegistryService,
  | 'getConfig'
  | 'putConfig'
  | 'patchConfig'
  | 'listConfigRules'
  | 'getConfigRule'
  | 'putConfigRule'
  | 'patchConfigRule'
  | 'deleteConfigRule'
  | 'getEffectiveConfig'
  | 'getEffectiveConfigs'
  | 'getConfigStatus'
  | 'configDelivered'
  | 'configApplied'
>

/** Devices whose configuration inputs are read in one go. */
const CONFIG_BATCH = 1_000

function checkScope(scope: ConfigScope): ConfigScope {
  switch (scope.level) {
    case 'tenant':
      return { level: 'tenant' }
    case 'app-version':
      return { level: 'app-version', appVersion: checkAppVersion(scope.appVersion) }
    case 'device':
      return { level: 'device', device: checkDeviceId(scope.device) }
    default:
      throw invalid('level', 'must be tenant, app-version or device')
  }
}

export function configOperations(ctx: ConfigContext): ConfigOperations {
  const { store, changed, requireTenant, requireDevice, now } = ctx

  async function requireRule(tenant: string, name: string): Promise<ConfigRule> {
    const rule = await store.getConfigRule(tenant, name)
    if (rule === undefined) {
      await requireTenant(tenant)
      throw new TributaryError(
        'REGISTRY_NOT_FOUND',
        `configuration rule ${JSON.stringify(name)} of tenant ${JSON.stringify(tenant)} does not exist`,
      )
    }
    return rule
  }

  async function bound(tenant: string): Promise<number> {
    return configMaxBytes((await requireTenant(tenant)).settings)
  }

  return {
    async getConfig(tenant, scope) {
      return store.getConfigDocument(checkTenantId(tenant), checkScope(scope))
    },

    async putConfig(tenant, scope, document, pre) {
      checkTenantId(tenant)
      const level = checkScope(scope)
      const checked = checkConfigDocument(document, await bound(tenant))
      return changed(await store.putConfigDocument(tenant, level, checked, pre))
    },

    async patchConfig(tenant, scope, patch, pre) {
      checkTenantId(tenant)
      const level = checkScope(scope)
      if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
        throw invalid('config', 'a merge patch of a configuration must be a JSON object')
      }
      const maxBytes = await bound(tenant)
      for (let attempt = 1; ; attempt++) {
        const current = await store.getConfigDocument(tenant, level)
        if (pre?.ifVersion !== undefined && pre.ifVersion !== current.version) {
          throw new TributaryError(
            'REGISTRY_VERSION_MISMATCH',
            `the configuration is at version ${current.version}, not ${pre.ifVersion}; read it again and retry`,
            { details: { current: current.version } },
          )
        }
        const patched = applyMergePatch(current.document as ConfigObject, patch as ConfigValue)
        const checked = checkConfigDocument(patched, maxBytes)
        try {
          return changed(
            await store.putConfigDocument(tenant, level, checked, { ifVersion: current.version }),
          )
        } catch (err) {
          // Without If-Match a concurrent writer makes us patch its document instead of losing it.
          const retry = pre?.ifVersion === undefined && attempt < MERGE_ATTEMPTS
          if (!retry || !isTributaryError(err, 'REGISTRY_VERSION_MISMATCH')) throw err
        }
      }
    },

    async listConfigRules(tenant) {
      await requireTenant(checkTenantId(tenant))
      return store.listConfigRules(tenant)
    },

    async getConfigRule(tenant, name) {
      return requireRule(checkTenantId(tenant), checkRuleName(name))
    },

    async putConfigRule(tenant, name, body, pre) {
      checkTenantId(tenant)
      checkRuleName(name)
      const spec = checkConfigRule(body, await bound(tenant))
      return changed(await store.putConfigRule(tenant, name, spec, pre))
    },

    async patchConfigRule(tenant, name, patch, pre) {
      checkTenantId(tenant)
      checkRuleName(name)
      if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
        throw invalid('body', 'a merge patch of a rule must be a JSON object')
      }
      const maxBytes = await bound(tenant)
      for (let attempt = 1; ; attempt++) {
        const current = await requireRule(tenant, name)
        if (pre?.ifVersion !== undefined && pre.ifVersion !== current.version) {
          throw new TributaryError(
            'REGISTRY_VERSION_MISMATCH',
            `the rule is at version ${current.version}, not ${pre.ifVersion}; read it again and retry`,
            { details: { current: current.version } },
          )
        }
        const whole = { selector: current.selector, priority: current.priority, config: current.document }
        const spec = checkConfigRule(applyMergePatch(whole as ConfigValue, patch as ConfigValue), maxBytes)
        try {
          return changed(await store.putConfigRule(tenant, name, spec, { ifVersion: current.version }))
        } catch (err) {
          const retry = pre?.ifVersion === undefined && attempt < MERGE_ATTEMPTS
          if (!retry || !isTributaryError(err, 'REGISTRY_VERSION_MISMATCH')) throw err
        }
      }
    },

    async deleteConfigRule(tenant, name, pre) {
      changed(await store.deleteConfigRule(checkTenantId(tenant), checkRuleName(name), pre))
    },

    async getEffectiveConfig(tenant, device) {
      await requireDevice(tenant, device)
      const [inputs, state] = await Promise.all([
        store.configInputs(tenant, [device]),
        store.getConfigState(tenant, device),
      ])
      const found = inputs.devices.get(device)
      if (found === undefined) {
        throw new TributaryError(
          'REGISTRY_NOT_FOUND',
          `device ${JSON.stringify(device)} of tenant ${JSON.stringify(tenant)} does not exist`,
        )
      }
      const config = effectiveDocument(partsOf(inputs, found), found.labels)
      const app = found.appVersion === null ? undefined : inputs.appVersions.get(found.appVersion)
      return {
        tenant,
        device,
        appVersion: found.appVersion,
        configId: configId(config),
        config,
        levels: [
          { level: 'tenant' as const, version: inputs.tenant.version },
          ...(found.appVersion === null
            ? []
            : [{ level: 'app-version' as const, appVersion: found.appVersion, version: app?.version ?? 0 }]),
          ...matchingRules(inputs.rules, found.labels).map((rule) => ({
            level: 'rule' as const,
            rule: rule.name,
            version: rule.version,
          })),
          { level: 'device' as const, device, version: found.own.version },
        ],
        state: state ?? null,
      }
    },

    async getEffectiveConfigs(tenant, devices) {
      checkTenantId(tenant)
      const resolved = new Map<string, ResolvedConfig>()
      for (let at = 0; at < devices.length; at += CONFIG_BATCH) {
        const inputs = await store.configInputs(tenant, devices.slice(at, at + CONFIG_BATCH))
        for (const [id, device] of inputs.devices) {
          const config = effectiveDocument(partsOf(inputs, device), device.labels)
          resolved.set(id, { configId: configId(config), config })
        }
      }
      return resolved
    },

    async getConfigStatus(tenant) {
      await requireTenant(tenant)
      return store.configStatus(tenant)
    },

    async configDelivered(tenant, device, id, protocol) {
      await store.recordConfigDelivered(tenant, device, id, protocol, now())
    },

    async configApplied(tenant, device, body, protocol) {
      const report = checkConfigReport(body)
      const recorded = await store.recordConfigApplied(tenant, device, { ...report, protocol, at: now() })
      if (!recorded) {
        throw invalid(
          'configId',
          `${report.configId} was never sent to device ${device}; report the id of a configuration it received`,
        )
      }
      return report
    },
  }
}
