// The event WebSocket in the API document, and what a plain GET of it answers. The WebSocket itself
// is served on the listener's `upgrade` event (consumers/websocket): a request that reaches this
// route asked without `Upgrade: websocket`, so it gets 426 Upgrade Required saying how to connect.
import type { OpenAPIHono } from '@hono/zod-openapi'
import { createRoute, z } from '@hono/zod-openapi'
import { TributaryError } from '../../core/errors.ts'
import { STRUCTURED_JSON_SUBPROTOCOL } from '../../core/events/structured.ts'
import { API_PREFIX } from '../auth.ts'
import type { ApiEnv } from '../env.ts'
import { Problem, TenantParams } from '../schemas.ts'
import { problems } from './common.ts'

export const EVENTS_PATH = /^\/api\/v1\/tenants\/[^/]+\/events$/

const list = (description: string, example: string) => z.string().optional().openapi({ description, example })

// Documented, not enforced here: the upgrade checks the query (consumers/websocket/query.ts).
const EventsQuery = z.object({
  channel: list(
    'Channels (the event `subject`), or MQTT-style filters: `+` one level, `#` the rest (encode them as `%2B` and `%23`). Repeat or comma-separate.',
    'sensors/#',
  ),
  device: list('Device ids. Repeat or comma-separate.', 'device1'),
  type: list('Event types, exact. Repeat or comma-separate.', 'io.tributary.telemetry.v1'),
  from: list(
    'Where to start: `latest` (default), `earliest`, an offset for every partition, `<partition>:<offset>,...`, or an RFC 3339 time.',
    'earliest',
  ),
  group: list(
    'A name (1-64 of `a-z 0-9 -`): the socket reads in its own consumer group and resumes where it left off.',
    'dashboard',
  ),
  access_token: list(
    'The bearer token, for clients that cannot set `Authorization` (browsers); the header wins.',
    'tat_...',
  ),
})

const stream = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}/events`,
  operationId: 'streamEvents',
  tags: ['events'],
  summary: "Watch the tenant's events live (WebSocket)",
  description: `A WebSocket: send \`Upgrade: websocket\` with the subprotocol \`${STRUCTURED_JSON_SUBPROTOCOL}\` (\`Sec-WebSocket-Protocol\`). Each text frame is one processed event of the tenant as a CloudEvent in the JSON event format. Any role of the tenant may read (an API token, an OIDC token of its issuer, or the admin token); the credential is checked again every \`TRIBUTARY_CREDENTIAL_RECHECK_MS\` and the socket closes with 1008 once it is no longer valid. \`npx tributary events tail --tenant <t>\` is a client. See docs/websocket.md.`,
  request: { params: TenantParams, query: EventsQuery },
  responses: {
    101: {
      description: `Switching Protocols: the WebSocket is open, subprotocol \`${STRUCTURED_JSON_SUBPROTOCOL}\`.`,
    },
    426: {
      description:
        'Upgrade Required: a plain GET, without `Upgrade: websocket` (`Upgrade: websocket` in the answer).',
      content: { 'application/problem+json': { schema: Problem } },
    },
    ...problems(400, 401, 403, 404),
    429: {
      description: 'Too many sockets open on the process, or for the tenant.',
      content: { 'application/problem+json': { schema: Problem } },
    },
  },
})

const upgradeRequired = (): TributaryError =>
  new TributaryError(
    'UPGRADE_REQUIRED',
    `this is a WebSocket: connect with Upgrade: websocket and the subprotocol ${STRUCTURED_JSON_SUBPROTOCOL} (npx tributary events tail is a client; see ${API_PREFIX}/docs#op-streamEvents)`,
    { details: { upgrade: 'websocket' } },
  )

/**
 * A plain GET answers 426 whatever its path parameter and query say (the upgrade checks those), and
 * without credentials: it learns nothing but how to connect. The socket checks the bearer token.
 */
export function eventRoutes(app: OpenAPIHono<ApiEnv>): void {
  app.openapi(
    stream,
    () => {
      throw upgradeRequired()
    },
    () => {
      throw upgradeRequired()
    },
  )
}
