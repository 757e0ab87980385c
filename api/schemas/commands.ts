// Command schemas: the path and query of `POST .../devices/{device}/commands/{name}` and the
// answer when the caller does not wait.
import { z } from '@hono/zod-openapi'
import { COMMAND_NAME_PATTERN, MAX_COMMAND_TTL_MS } from '../../core/events/commands.ts'
import { DeviceId, TenantId } from './common.ts'

export const CommandParams = z.strictObject({
  tenant: TenantId,
  device: DeviceId,
  name: z
    .string()
    .regex(COMMAND_NAME_PATTERN, { error: 'use 1-64 of A-Z a-z 0-9 . _ ~ -' })
    .refine((name) => name !== 'res' && name !== 'req' && name !== '.' && name !== '..', {
      error: 'res, req, . and .. are reserved',
    })
    .openapi({
      description: 'Command name: 1-64 of A-Z a-z 0-9 . _ ~ - (not res or req).',
      example: 'reboot',
    }),
})

const seconds = (description: string, max: number) =>
  z.coerce.number({ error: 'a number of seconds' }).min(0).max(max).openapi({ description, type: 'number' })

export const CommandQuery = z.strictObject({
  ttl: seconds(
    'How long the command may wait for the device, in seconds (up to 7 days); 0 = only if it is connected now. Default: `wait` when given, else TRIBUTARY_COMMAND_TTL_MS.',
    MAX_COMMAND_TTL_MS / 1000,
  ).optional(),
  wait: seconds(
    'Request/response: wait this many seconds (up to TRIBUTARY_COMMAND_MAX_WAIT_MS) for the device’s response and return it; 504 when none came.',
    3_600,
  ).optional(),
  request: z.enum(['true', 'false']).optional().openapi({
    description: 'Give the command a request id without waiting (the response arrives as an event).',
  }),
  fport: z.coerce
    .number()
    .int()
    .min(1)
    .max(223)
    .optional()
    .openapi({ description: 'LoRaWAN FPort for TTN devices (default 1).', type: 'integer' }),
  downlink: z
    .enum(['push', 'replace'])
    .optional()
    .openapi({ description: 'TTN devices: push onto the downlink queue (default) or replace it.' }),
})

export const CommandAccepted = z
  .object({
    id: z.string().openapi({ description: 'The command event id; status events carry it as `commandid`.' }),
    requestId: z
      .string()
      .optional()
      .openapi({ description: 'The request id the device answers with (request-style commands).' }),
    expiresAt: z.string().openapi({ description: 'After this the command is not delivered any more.' }),
  })
  .openapi('CommandAccepted')
