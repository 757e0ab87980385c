// Channel schema schemas: the JSON Schema a tenant gives for the data of one channel's events.
import { z } from '@hono/zod-openapi'
import { CHANNEL_MAX_LENGTH, CHANNEL_PATTERN } from '../../core/events/ids.ts'
import { SCHEMA_LIMITS } from '../../core/registry/json-schema.ts'
import { TenantId, versioned } from './common.ts'

export const Channel = z
  .string()
  .max(CHANNEL_MAX_LENGTH, { error: `a channel has at most ${CHANNEL_MAX_LENGTH} characters` })
  .regex(CHANNEL_PATTERN, { error: 'use 1-8 levels of A-Z a-z 0-9 . _ ~ - separated by /' })
  .openapi({
    description:
      'Channel: 1-8 levels of A-Z a-z 0-9 . _ ~ - separated by `/`, at most 256 characters (the event `subject`). In a path, percent-encode the slashes: `telemetry%2Ftemp`.',
    example: 'telemetry/temp',
  })

export const ChannelParams = z.strictObject({ tenant: TenantId, channel: Channel })

const JsonSchemaDocument = z.record(z.string(), z.unknown()).openapi({
  description: `A JSON Schema (draft 2020-12, formats checked) for the event data; at most ${SCHEMA_LIMITS.bytes / 1024} KiB as JSON and ${SCHEMA_LIMITS.depth} levels deep. Only local \`$ref\`s: nothing is ever fetched.`,
  example: {
    type: 'object',
    required: ['t'],
    properties: { t: { type: 'number', minimum: -50, maximum: 150 } },
  },
})

export const ChannelSchema = z
  .object({ tenant: TenantId, channel: z.string(), schema: z.record(z.string(), z.unknown()), ...versioned })
  .openapi('ChannelSchema')

export const ChannelSchemaInput = z.strictObject({ schema: JsonSchemaDocument }).openapi('ChannelSchemaInput')

/** If-Match (replace that version) or If-None-Match: * (create only) on a create-or-replace. */
export const PutPreconditionHeaders = z.object({
  'if-match': z.string().optional().openapi({
    description:
      'Replace only this version (`"<version>"`), or `*`: only if it exists. A stale one fails with 412 and changes nothing.',
    example: '"3"',
  }),
  'if-none-match': z.string().optional().openapi({
    description: '`*`: create only; 412 if it exists already.',
    example: '*',
  }),
})
