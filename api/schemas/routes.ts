// Route table schemas: rules that match events by channel, type and device labels and act on them.
// The registry checks the same limits again (core/registry/validate-routes.ts).
import { z } from '@hono/zod-openapi'
import {
  COPY_TOPIC_PATTERN,
  EXTENSION_NAME_PATTERN,
  PROTECTED_ATTRIBUTES,
  REASON_PATTERN,
  ROUTE_LIMITS,
  RULE_NAME_PATTERN,
  TYPE_PATTERN,
  isChannelFilter,
} from '../../core/registry/validate-routes.ts'
import { Channel } from './schemas.ts'
import { TenantId, labelMap, versioned } from './common.ts'

// eslint-disable-next-line no-control-regex
const NO_CONTROL = /^[^\u0000-\u001f\u007f]*$/

const EventType = z
  .string()
  .regex(TYPE_PATTERN, { error: 'use 1-256 printable ASCII characters' })
  .openapi({ example: 'io.tributary.telemetry.v1' })

const ExtensionName = z
  .string()
  .regex(EXTENSION_NAME_PATTERN, { error: 'use 1-20 of a-z 0-9 (a CloudEvents attribute name)' })
  .refine((name) => !PROTECTED_ATTRIBUTES.includes(name), {
    error: `a rule may not change ${PROTECTED_ATTRIBUTES.join(', ')}`,
  })
  .openapi({
    description: `A CloudEvents extension attribute; not one of ${PROTECTED_ATTRIBUTES.join(', ')}.`,
  })

export const RouteMatch = z
  .strictObject({
    channel: z
      .string()
      .refine(isChannelFilter, {
        error: 'use a channel, or a filter with + for one level and a last # for the rest',
      })
      .optional()
      .openapi({
        description: 'A channel, or an MQTT-style filter: `+` one level, `#` (last) the rest.',
        example: 'telemetry/+',
      }),
    type: EventType.optional().openapi({ description: 'The event type, exactly.' }),
    labels: labelMap(ROUTE_LIMITS.matchLabels)
      .optional()
      .openapi({ description: 'Labels the device must carry (all of them).', example: { site: 'north' } }),
  })
  .openapi('RouteMatch', { description: 'Every field given must match; `{}` matches every event.' })

export const RouteAction = z
  .discriminatedUnion(
    'action',
    [
      z.strictObject({ action: z.literal('drop') }),
      z.strictObject({
        action: z.literal('reject'),
        reason: z.string().regex(REASON_PATTERN, { error: 'use 1-64 of a-z 0-9 -' }).openapi({
          description: 'The dead-letter reason.',
          example: 'test-device',
        }),
      }),
      z.strictObject({
        action: z.literal('set-extension'),
        name: ExtensionName,
        value: z
          .string()
          .max(ROUTE_LIMITS.extensionValue)
          .regex(NO_CONTROL, { error: 'no control characters' }),
      }),
      z.strictObject({ action: z.literal('remove-extension'), name: ExtensionName }),
      z.strictObject({ action: z.literal('set-type'), type: EventType }),
      z.strictObject({ action: z.literal('set-subject'), subject: Channel }),
      z.strictObject({
        action: z.literal('copy'),
        topic: z
          .string()
          .regex(COPY_TOPIC_PATTERN, { error: 'use 1-32 of a-z 0-9 -' })
          .openapi({ description: 'Also publish to `<prefix>.events.<tenant>.<topic>`.', example: 'alerts' }),
      }),
    ],
    {
      error:
        'action must be one of drop, reject, set-extension, remove-extension, set-type, set-subject, copy',
    },
  )
  .openapi('RouteAction')

export const RouteRule = z
  .strictObject({
    name: z
      .string()
      .regex(RULE_NAME_PATTERN, { error: 'use 1-64 of a-z 0-9 -' })
      .openapi({ description: 'Unique in the table.', example: 'alerts-to-topic' }),
    match: RouteMatch,
    actions: z.array(RouteAction).min(1).max(ROUTE_LIMITS.actionsPerRule),
  })
  .openapi('RouteRule')

const Rules = z
  .array(RouteRule)
  .max(ROUTE_LIMITS.rules)
  .superRefine((rules, ctx) => {
    const seen = new Set<string>()
    rules.forEach((rule, i) => {
      if (seen.has(rule.name)) {
        ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `${rule.name} names an earlier rule too` })
      }
      seen.add(rule.name)
    })
  })

export const RouteTable = z
  .object({ tenant: TenantId, rules: z.array(RouteRule), ...versioned })
  .openapi('RouteTable', { description: 'Version 0 and no rules until the table is first written.' })

export const RouteTableInput = z.strictObject({ rules: Rules }).openapi('RouteTableInput')
