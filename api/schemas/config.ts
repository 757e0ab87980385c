// Desired device configuration schemas: a level's document, a label-selector rule, a device's
// effective configuration and the path parameters of the application-version level and of a rule. The registry checks documents again
// (core/registry/device-config.ts: JSON object, depth, the tenant's size bound).
import { z } from '@hono/zod-openapi'
import {
  APP_VERSION_PATTERN,
  CONFIG_RULE_PRIORITY,
  CONFIG_RULE_SELECTOR_MAX,
} from '../../core/registry/device-config.ts'
import { DeviceId, TenantId, Timestamp, labelMap, versioned } from './common.ts'

export const AppVersion = z
  .string()
  .regex(APP_VERSION_PATTERN, { error: 'use 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit' })
  .openapi({ description: 'Application version: 1-64 of A-Z a-z 0-9 . _ -', example: 'v1.2.0' })

export const AppVersionParams = z.strictObject({ tenant: TenantId, appVersion: AppVersion })

export const RuleName = z
  .string()
  .regex(APP_VERSION_PATTERN, { error: 'use 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit' })
  .openapi({ description: 'Rule name: 1-64 of A-Z a-z 0-9 . _ -', example: 'eu-gateways' })

export const ConfigRuleParams = z.strictObject({ tenant: TenantId, rule: RuleName })

const Selector = labelMap(CONFIG_RULE_SELECTOR_MAX)
  .refine((l) => Object.keys(l).length > 0, {
    error: 'name at least one label; the tenant default is for every device',
  })
  .openapi({
    description: 'Labels a device must carry, all of them, for the rule to apply (1-16 pairs).',
    example: { region: 'eu' },
  })

const Priority = z
  .int()
  .min(CONFIG_RULE_PRIORITY.min)
  .max(CONFIG_RULE_PRIORITY.max)
  .openapi({ description: 'Rules merge in ascending priority, then name: the highest wins.', example: 10 })

export const ConfigBody = z.record(z.string(), z.unknown()).openapi('ConfigBody', {
  description:
    'A configuration document: any JSON object, at most `settings.configMaxBytes` of the tenant (default 65536) as canonical JSON, nested at most 32 levels.',
  example: { sampling: { intervalS: 60 }, led: 'off' },
})

export const ConfigDocument = z
  .object({
    tenant: TenantId,
    level: z.enum(['tenant', 'app-version', 'device']),
    appVersion: AppVersion.optional().openapi({ description: 'Set for the application-version level.' }),
    device: DeviceId.optional().openapi({ description: 'Set for the device level.' }),
    config: z.record(z.string(), z.unknown()),
    ...versioned,
  })
  .openapi('ConfigDocument', {
    description: 'One level of the desired configuration; version 0 and `{}` until written.',
  })

export const ConfigRuleBody = z
  .strictObject({
    selector: Selector,
    priority: Priority.optional().openapi({ description: 'Default 0.' }),
    config: ConfigBody,
  })
  .openapi('ConfigRuleBody', {
    description: 'A label-selector rule: devices carrying every selector label get `config` merged in.',
  })

export const ConfigRule = z
  .object({
    tenant: TenantId,
    rule: RuleName,
    selector: z.record(z.string(), z.string()),
    priority: z.int(),
    config: z.record(z.string(), z.unknown()),
    ...versioned,
  })
  .openapi('ConfigRule', { description: 'A configuration rule.' })

export const ConfigRuleList = z
  .object({ tenant: TenantId, items: z.array(ConfigRule) })
  .openapi('ConfigRuleList', { description: 'The tenant’s rules in the order they merge.' })

export const EffectiveConfig = z
  .object({
    tenant: TenantId,
    device: DeviceId,
    appVersion: AppVersion.nullable(),
    configId: z.string().openapi({
      description:
        'The content hash of `config`: sha256 of its canonical JSON (keys sorted), first 16 bytes as base64url.',
      example: 'q3Jm2cH1yF8x0eZ4b7QK9w',
    }),
    config: z.record(z.string(), z.unknown()),
    levels: z
      .array(
        z.object({
          level: z.enum(['tenant', 'app-version', 'rule', 'device']),
          appVersion: AppVersion.optional(),
          rule: RuleName.optional(),
          device: DeviceId.optional(),
          version: z.int().min(0),
        }),
      )
      .openapi({ description: 'The documents merged, in order (later wins), with their versions.' }),
    state: z
      .object({
        delivered: z.object({ configId: z.string(), time: Timestamp, protocol: z.string() }),
        applied: z
          .object({
            configId: z.string(),
            statusCode: z.int().openapi({ description: '200: applied; 400-599: rejected.' }),
            reasonPhrase: z.string().nullable(),
            time: Timestamp,
            protocol: z.string(),
          })
          .nullable()
          .openapi({ description: 'The device’s last report; null until it reports.' }),
      })
      .nullable()
      .openapi({
        description: 'What the device was last sent and last reported; null before its first delivery.',
      }),
  })
  .openapi('EffectiveConfig', {
    description:
      'Tenant default, the document of the device’s appVersion, the rules its labels match (by priority) and the device document, deep-merged: objects merge key by key, anything else from a later level replaces.',
  })

export const ConfigStatus = z
  .object({
    tenant: TenantId,
    items: z.array(
      z.object({
        configId: z.string(),
        applied: z.int().min(0).openapi({ description: 'Devices sent this id last that reported 200.' }),
        rejected: z.int().min(0).openapi({ description: 'Devices sent this id last that reported 400-599.' }),
        pending: z
          .int()
          .min(0)
          .openapi({ description: 'Devices sent this id last that have not reported it.' }),
      }),
    ),
  })
  .openapi('ConfigStatus', {
    description: 'The fleet by the configuration id each device was sent last, in id order.',
  })
