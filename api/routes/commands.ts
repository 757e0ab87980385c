// Sending a command to a device: `POST /api/v1/tenants/{t}/devices/{d}/commands/{name}` with the
// payload as the body. Without `wait` the command is on the commands topic when this answers 202;
// with `wait` the call returns the device's response (200), or 504/502 when none can come.
import { validTraceparent } from '../../core/tracing.ts'
import type { OpenAPIHono } from '@hono/zod-openapi'
import { createRoute, z } from '@hono/zod-openapi'
import { TributaryError } from '../../core/errors.ts'
import type { CommandSender } from '../../commands/service.ts'
import type { CommandInput } from '../../core/events/commands.ts'
import { uuidv7 } from '../../core/events/ids.ts'
import { API_PREFIX, requires } from '../auth.ts'
import type { ApiEnv } from '../env.ts'
import { CommandAccepted, CommandParams, CommandQuery } from '../schemas.ts'
import { jsonResponse, problems } from './common.ts'

const send = createRoute({
  method: 'post',
  path: `${API_PREFIX}/tenants/{tenant}/devices/{device}/commands/{name}`,
  operationId: 'sendCommand',
  tags: ['commands'],
  summary: 'Send a command to a device (manager)',
  description:
    'The body is the payload, sent as is with its Content-Type. Delivery per protocol and the status events: docs/commands.md.',
  middleware: [requires('manager')],
  request: {
    params: CommandParams,
    query: CommandQuery,
    body: {
      required: false,
      description: 'The command payload, any media type.',
      content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } },
    },
  },
  responses: {
    200: {
      description: 'With `wait`: the device’s response as its body, with its content type.',
      headers: {
        'tributary-command-status': {
          description: 'The status code the device answered with (200-599).',
          schema: { type: 'integer' as const },
        },
        'tributary-request-id': { description: 'The request id.', schema: { type: 'string' as const } },
      },
      content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } },
    },
    202: jsonResponse(CommandAccepted, 'Without `wait`: the command is on the commands topic.'),
    ...problems(400, 401, 403, 404, 413, 503),
    502: {
      description: 'With `wait`: the command failed (e.g. the device was deleted); `reason` says why.',
      content: { 'application/problem+json': { schema: z.object({}).passthrough() } },
    },
    504: {
      description: 'With `wait`: no response in time, or the command expired undelivered (`reason`).',
      content: { 'application/problem+json': { schema: z.object({}).passthrough() } },
    },
  },
})

export function commandRoutes(app: OpenAPIHono<ApiEnv>, sender: CommandSender | undefined): void {
  app.openapi(send, async (c) => {
    const { tenant, device, name } = c.req.valid('param')
    const query = c.req.valid('query')
    if (sender === undefined)
      throw new TributaryError('BUS_UNAVAILABLE', 'commands are not served by this process')
    // 404 for a device that does not exist, before anything is sent (the tenant was checked by `requires`).
    if (!(await sender.deviceExists(tenant, device)))
      throw new TributaryError('REGISTRY_NOT_FOUND', `device ${device} of tenant ${tenant} not found`)
    const waitMs = query.wait === undefined ? undefined : Math.round(query.wait * 1000)
    if (waitMs !== undefined && (waitMs < 1 || waitMs > sender.maxWaitMs)) {
      throw new TributaryError(
        'REQUEST_INVALID',
        `wait must be above 0 and at most ${sender.maxWaitMs / 1000} seconds`,
      )
    }
    const ttlMs = query.ttl === undefined ? (waitMs ?? sender.defaultTtlMs) : Math.round(query.ttl * 1000)
    const requestId = waitMs !== undefined || query.request === 'true' ? uuidv7() : undefined
    const payload = Buffer.from(await c.req.arrayBuffer())
    const contentType = c.req.header('content-type')
    const time = new Date()
    const command: CommandInput = {
      tenant,
      device,
      name,
      payload,
      contentType: contentType === undefined || contentType === '' ? undefined : contentType,
      requestId,
      ttlMs,
      origin: 'api',
      fport: query.fport,
      downlink: query.downlink,
      traceparent: validTraceparent(c.req.header('traceparent')),
      time,
      id: uuidv7(),
    }
    const waiting =
      requestId === undefined || waitMs === undefined
        ? undefined
        : await sender.wait(tenant, device, requestId, waitMs)
    try {
      await sender.send(command)
    } catch (err) {
      waiting?.cancel()
      throw err
    }
    if (waiting === undefined) {
      return c.json(
        {
          id: command.id,
          ...(requestId === undefined ? {} : { requestId }),
          expiresAt: new Date(time.getTime() + ttlMs).toISOString(),
        },
        202,
      )
    }
    const outcome = await waiting.outcome
    if (outcome.kind === 'response') {
      const headers: Record<string, string> = {
        'tributary-command-status': String(outcome.status),
        'tributary-request-id': requestId ?? '',
      }
      if (outcome.contentType !== undefined) headers['content-type'] = outcome.contentType
      return c.body(new Uint8Array(outcome.payload), 200, headers)
    }
    if (outcome.kind === 'ended' && outcome.status === 'failed') {
      throw new TributaryError('COMMAND_FAILED', `the command failed: ${outcome.reason}`, {
        details: { reason: outcome.reason, requestId, command: command.id },
      })
    }
    throw new TributaryError(
      'COMMAND_TIMEOUT',
      outcome.kind === 'ended'
        ? `the command expired before it reached the device: ${outcome.reason}`
        : `no response from the device within ${(waitMs ?? 0) / 1000} s`,
      {
        details: {
          reason: outcome.kind === 'ended' ? outcome.reason : 'no-response',
          requestId,
          command: command.id,
        },
      },
    )
  })
}
