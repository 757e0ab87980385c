// Device schemas: labels and gateways, what a create or a PATCH may carry, and the label filter.
import { z } from '@hono/zod-openapi'
import { LIMITS } from '../../core/registry/validate.ts'
import { AppVersion } from './config.ts'
import {
  DeviceId,
  LABEL_KEY_PATTERN,
  LABEL_VALUE_PATTERN,
  ListQuery,
  TenantId,
  Timestamp,
  labelMap,
  versioned,
} from './common.ts'

export const MAX_LABELS = LIMITS.labels

const Labels = labelMap(MAX_LABELS).openapi({
  description: 'Key/value labels, filterable in lists.',
  example: { site: 'north', kind: 'meter' },
})

const Gateways = z
  .array(DeviceId)
  .max(LIMITS.gateways)
  .refine((g) => new Set(g).size === g.length, { error: 'list each gateway once' })
  .openapi({ description: 'Devices allowed to publish and receive commands for this one.' })

export const Device = z
  .object({
    tenant: TenantId,
    id: DeviceId,
    enabled: z.boolean(),
    labels: z.record(z.string(), z.string()),
    gateways: z.array(z.string()),
    appVersion: z
      .string()
      .nullable()
      .openapi({ description: 'The application version the device runs; selects a configuration level.' }),
    lastSeen: Timestamp.nullable().openapi({ description: 'Last time an adapter saw the device.' }),
    ...versioned,
  })
  .openapi('Device')

const deviceInputFields = {
  enabled: z.boolean().optional(),
  labels: Labels.optional(),
  gateways: Gateways.optional(),
  appVersion: AppVersion.nullable().optional().openapi({
    description: 'The application version the device runs (null: none); its change pushes the configuration.',
  }),
}

export const DeviceCreate = z.strictObject({ id: DeviceId, ...deviceInputFields }).openapi('DeviceCreate')
export const DevicePatch = z.strictObject(deviceInputFields).openapi('DevicePatch')

export const DeviceListQuery = ListQuery.extend({
  label: z
    .union([z.string().max(4096), z.array(z.string().max(4096)).max(MAX_LABELS)])
    .optional()
    .openapi({
      description:
        'Label selector `key=value`; repeat it or separate pairs with commas. Every pair must match.',
      example: 'site=north',
    }),
})

/** `key=value` pairs from the label query (repeated and comma-separated), or why it is invalid. */
export function parseLabelSelector(
  raw: string | readonly string[] | undefined,
): Record<string, string> | string {
  const selector: Record<string, string> = {}
  const parts = (typeof raw === 'string' ? [raw] : (raw ?? [])).flatMap((v) => v.split(','))
  for (const part of parts) {
    const eq = part.indexOf('=')
    const key = eq < 0 ? part : part.slice(0, eq)
    const value = eq < 0 ? undefined : part.slice(eq + 1)
    if (value === undefined || !LABEL_KEY_PATTERN.test(key) || !LABEL_VALUE_PATTERN.test(value)) {
      return `label selector ${JSON.stringify(part)} is invalid: use key=value`
    }
    if (Object.hasOwn(selector, key) && selector[key] !== value) {
      return `label ${JSON.stringify(key)} is selected with two values`
    }
    selector[key] = value
  }
  if (Object.keys(selector).length > MAX_LABELS) return `at most ${MAX_LABELS} label pairs`
  return selector
}
