// Webhook subscription schemas: where a tenant's events are pushed, which ones, how (CloudEvents
// binary, structured or batched), signed with a Standard Webhooks secret shown only when made.
import { z } from '@hono/zod-openapi'
import {
  DEFAULT_RETRY,
  DEFAULT_TIMEOUT_MS,
  SUBSCRIPTION_LIMITS,
} from '../../core/registry/validate-subscriptions.ts'
import { ResourceId, TenantId, Timestamp, versioned } from './common.ts'

const L = SUBSCRIPTION_LIMITS

export const SubscriptionParams = z.strictObject({ tenant: TenantId, id: ResourceId })

const Url = z
  .string()
  .min(1)
  .max(L.urlLength)
  .openapi({
    description: `Where events are POSTed: https (or http, unencrypted), at most ${L.urlLength} characters, no user, password or fragment. \`localhost\` and loopback, link-local, private and other special-purpose addresses (IPv6 forms carrying an IPv4 address judged by it) are refused, on write and at connect, unless TRIBUTARY_WEBHOOK_ALLOW_PRIVATE is set.`,
    example: 'https://hooks.example.com/tributary',
  })

const entries = (description: string, example: string) =>
  z
    .array(z.string().max(256))
    .min(1)
    .max(L.filterEntries)
    .openapi({ description, example: [example] })

const Filter = z
  .strictObject({
    types: entries('Event types, exact; any of them.', 'io.tributary.telemetry.v1').optional(),
    channels: entries(
      'Channels, or filters with `+` for one level and a last `#` for the rest, matched against the event `subject`; any of them.',
      'telemetry/#',
    ).optional(),
    devices: entries('Device ids; any of them.', 'sensor-1').optional(),
    labels: z
      .record(z.string(), z.string())
      .optional()
      .openapi({
        description: `Device labels that must all be set (at most ${L.filterEntries}).`,
        example: { site: 'north' },
      }),
  })
  .openapi('SubscriptionFilter', {
    description: `Which events are delivered; every given field must match, \`{}\` matches every event. Lists hold 1-${L.filterEntries} entries.`,
  })

const Retry = z
  .strictObject({
    maxAttempts: z
      .int()
      .min(1)
      .max(L.maxAttempts)
      .optional()
      .openapi({
        description: `Attempts in all, the first included (default ${DEFAULT_RETRY.maxAttempts}).`,
      }),
    initialBackoffMs: z
      .int()
      .min(L.initialBackoffMinMs)
      .max(L.initialBackoffMaxMs)
      .optional()
      .openapi({
        description: `First wait before a retry (default ${DEFAULT_RETRY.initialBackoffMs}); doubled per attempt with full jitter.`,
      }),
    maxBackoffMs: z
      .int()
      .min(L.initialBackoffMinMs)
      .max(L.maxBackoffMaxMs)
      .optional()
      .openapi({
        description: `Longest wait between attempts, at least initialBackoffMs (default ${DEFAULT_RETRY.maxBackoffMs}).`,
      }),
  })
  .openapi('RetryPolicyInput', {
    description: 'Omitted fields keep their value (PATCH) or default (create).',
  })

const subscriptionInputFields = {
  filter: Filter.optional(),
  mode: z.enum(['binary', 'structured']).optional().openapi({
    description:
      'CloudEvents HTTP binding: `binary` (data as the body, attributes as `ce-` headers; default) or `structured` (application/cloudevents+json).',
  }),
  batchSize: z
    .int()
    .min(1)
    .max(L.batchSize)
    .nullable()
    .optional()
    .openapi({
      description: `Up to this many events per request as application/cloudevents-batch+json (1-${L.batchSize}); null: one event per request (default).`,
    }),
  headers: z
    .record(z.string().max(L.headerName), z.string().max(L.headerValue))
    .optional()
    .openapi({
      description: `Extra request headers (at most ${L.headers}; values printable ASCII, at most ${L.headerValue} characters). Content-Type, Content-Length, Host, hop-by-hop headers, \`webhook-*\` and \`ce-*\` are refused; Authorization is allowed.`,
      example: { Authorization: 'Bearer my-receiver-token' },
    }),
  timeoutMs: z
    .int()
    .min(L.timeoutMinMs)
    .max(L.timeoutMaxMs)
    .optional()
    .openapi({
      description: `How long one request may take (default ${DEFAULT_TIMEOUT_MS}).`,
    }),
  retry: Retry.optional(),
}

export const SubscriptionCreate = z
  .strictObject({
    url: Url,
    ...subscriptionInputFields,
    secret: z
      .string()
      .max(200)
      .optional()
      .openapi({
        description: `Your own signing secret: \`whsec_\` and the base64 of ${L.secretMinBytes}-${L.secretMaxBytes} random bytes. Omitted: one is generated.`,
      }),
  })
  .openapi('SubscriptionCreate')

export const SubscriptionPatch = z
  .strictObject({ url: Url.optional(), ...subscriptionInputFields })
  .openapi('SubscriptionPatch')

export const SubscriptionAction = z.strictObject({}).openapi('SubscriptionAction')

export const SubscriptionReplay = z
  .strictObject({
    from: Timestamp.openapi({
      description:
        'Deliver every matching event from this time on again; not in the future. Events older than the tenant topic’s retention are gone.',
    }),
  })
  .openapi('SubscriptionReplay')

export const Subscription = z
  .object({
    tenant: TenantId,
    id: z.string(),
    url: z.string(),
    filter: z.object({
      types: z.array(z.string()).optional(),
      channels: z.array(z.string()).optional(),
      devices: z.array(z.string()).optional(),
      labels: z.record(z.string(), z.string()).optional(),
    }),
    mode: z.enum(['binary', 'structured']),
    batchSize: z.int().nullable(),
    headers: z.record(z.string(), z.string()),
    timeoutMs: z.int(),
    retry: z.object({ maxAttempts: z.int(), initialBackoffMs: z.int(), maxBackoffMs: z.int() }),
    state: z.enum(['active', 'paused', 'disabled']).openapi({
      description:
        '`active`; `paused` (by the API); `disabled` (the endpoint answered 410 Gone). Resume makes it active again.',
    }),
    replayFrom: Timestamp.nullable().openapi({
      description: 'The `from` of the last replay request; null when never replayed.',
    }),
    replayGeneration: z.int().min(0).openapi({ description: 'How many replays were requested.' }),
    ...versioned,
  })
  .openapi('Subscription')

export const SubscriptionError = z
  .object({
    at: Timestamp.openapi({ description: 'When the attempt failed.' }),
    webhookId: z.string().openapi({ description: 'The `webhook-id` of the request.' }),
    attempt: z.int().min(1).openapi({ description: 'Which attempt of the request, from 1.' }),
    status: z
      .int()
      .nullable()
      .openapi({ description: 'The HTTP status; null when none came (network, timeout).' }),
    error: z.string().openapi({ description: 'What went wrong (≤ 1 KiB).', example: 'HTTP 503' }),
  })
  .openapi('SubscriptionError')

export const SubscriptionErrors = z
  .object({ items: z.array(SubscriptionError) })
  .openapi('SubscriptionErrors')

export const SubscriptionRedrive = z
  .strictObject({
    ids: z.array(z.string().min(1).max(256)).min(1).max(1000).optional().openapi({
      description:
        'Event ids (the letters’ `id`) to re-drive; without it, every letter of the subscription not re-driven yet.',
    }),
  })
  .openapi('SubscriptionRedrive')

export const RedriveQueued = z
  .object({
    queued: z.int().min(0).openapi({ description: 'How many dead letters were queued for re-drive.' }),
  })
  .openapi('RedriveQueued')

export const SubscriptionStats = z
  .object({
    attempts: z.int().min(0).openapi({ description: 'HTTP requests sent, the failed ones included.' }),
    delivered: z.int().min(0).openapi({ description: 'Events an endpoint accepted with a 2xx.' }),
    failedAttempts: z
      .int()
      .min(0)
      .openapi({ description: 'Requests that failed: an error status, a timeout or a network error.' }),
    deadLettered: z.int().min(0).openapi({
      description: 'Events given up on; a re-driven letter that fails again counts again.',
    }),
    lastSuccessAt: Timestamp.nullable().openapi({ description: 'The last 2xx; null before any.' }),
    lastFailureAt: Timestamp.nullable().openapi({ description: 'The last failed attempt; null before any.' }),
    lag: z.int().min(0).nullable().openapi({
      description:
        'Events on the tenant topic that the subscription’s consumer group has not passed yet (its consumer lag), measured by a delivery engine about every 30 s; null before the first measurement.',
    }),
    lagAt: Timestamp.nullable().openapi({ description: 'When `lag` was measured.' }),
  })
  .openapi('SubscriptionStats')

export const CreatedSubscription = z
  .object({
    subscription: Subscription,
    secret: z.string().openapi({
      description:
        'The Standard Webhooks signing secret (`whsec_...`). Shown this once; store it now. Rotate it to get a new one.',
      example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    }),
  })
  .openapi('CreatedSubscription')
