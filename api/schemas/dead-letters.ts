// Dead-letter schemas: one indexed letter as the API lists it, and the list filters.
import { z } from '@hono/zod-openapi'
import { DeviceId, ListQuery, ResourceId, TenantId, Timestamp } from './common.ts'

/** Reasons are stable slugs: the processors' own and route rules' `reject` reasons. */
export const REASON_PATTERN = /^[a-z0-9-]{1,64}$/

const optionalText = (description: string) => z.string().nullable().openapi({ description })

export const DeadLetter = z
  .object({
    tenant: TenantId,
    id: z.string().openapi({
      description: 'The event id (`ce_id`), or `<partition>-<offset>` when the record was no CloudEvent.',
    }),
    partition: z.int().min(0).openapi({ description: 'Partition of the record on `<prefix>.deadletter`.' }),
    offset: z.int().min(0).openapi({ description: 'Offset of the record on `<prefix>.deadletter`.' }),
    device: optionalText('The device the event is about.'),
    type: optionalText('The CloudEvents type.'),
    subject: optionalText('The CloudEvents subject (the channel of telemetry).'),
    step: z
      .string()
      .openapi({ description: 'The processor step that refused the event.', example: 'validate' }),
    reason: z.string().openapi({ description: 'Why, as a stable slug.', example: 'schema-invalid' }),
    detail: optionalText('What the step said beyond the reason, e.g. validation errors as JSON (≤ 4 KiB).'),
    firstFailure: Timestamp.openapi({ description: 'When the event was first refused.' }),
    deadLetteredAt: Timestamp.openapi({
      description: 'When this record was written to the dead-letter topic.',
    }),
    contentType: optionalText('The data content type.'),
    data: z.string().nullable().openapi({
      description:
        'The record value, base64. null when there is none or it is larger than 64 KiB (the topic keeps it whole).',
    }),
    subscription: optionalText(
      'The webhook subscription whose deliveries failed (step `webhook`); null for the processors’ letters.',
    ),
  })
  .openapi('DeadLetter')

export const DeadLetterListQuery = ListQuery.extend({
  device: DeviceId.optional().openapi({ description: 'Only letters of this device.' }),
  reason: z
    .string()
    .regex(REASON_PATTERN, { error: 'use 1-64 of a-z 0-9 -' })
    .optional()
    .openapi({ description: 'Only letters with this reason.', example: 'device-disabled' }),
  subscription: ResourceId.optional().openapi({ description: 'Only letters of this webhook subscription.' }),
})

/** The filters of one subscription's letters: the subscription is in the path. */
export const SubscriptionDeadLetterQuery = DeadLetterListQuery.omit({ subscription: true })
