// The management API as a hono app: authentication, one query rule for every route, the body limit,
// every route with its zod validation, the OpenAPI 3.1 document and reference page built from the
// same schemas, and problem+json for every error, unknown route (404) and wrong method (405).
import { OpenAPIHono } from '@hono/zod-openapi'
import { bodyLimit } from 'hono/body-limit'
import type { BearerAuthenticator, CallerLookups } from '../core/auth/bearer.ts'
import { TributaryError } from '../core/errors.ts'
import type { Logger } from '../core/log.ts'
import type { RegistryService } from '../core/registry/service.ts'
import { API_PREFIX, authenticate } from './auth.ts'
import { consoleRoutes } from './console.ts'
import { renderReference } from './docs-page.ts'
import type { ApiEnv } from './env.ts'
import { problemResponse, validationError } from './problem.ts'
import { createStrictQuery } from './query.ts'
import { credentialRoutes } from './routes/credentials.ts'
import type { DeadLetterReader } from './routes/dead-letters.ts'
import { deadLetterRoutes } from './routes/dead-letters.ts'
import type { CommandSender } from '../commands/service.ts'
import { commandRoutes } from './routes/commands.ts'
import { deviceRoutes } from './routes/devices.ts'
import { type FilesDeps, fileRoutes } from './routes/files.ts'
import { EVENTS_PATH, eventRoutes } from './routes/events.ts'
import { routeRoutes } from './routes/routes.ts'
import { configRoutes } from './routes/config.ts'
import { schemaRoutes } from './routes/schemas.ts'
import { subscriptionOperationRoutes } from './routes/subscription-operations.ts'
import { subscriptionRoutes } from './routes/subscriptions.ts'
import { tenantRoutes } from './routes/tenants.ts'
import { tokenRoutes } from './routes/tokens.ts'
import { ttnSecretRoutes } from './routes/ttn-secret.ts'

export interface ApiAppOptions {
  readonly registry: RegistryService
  readonly auth: BearerAuthenticator
  readonly lookups: CallerLookups
  /** The dead-letter index (the registry store); without it the dead-letter route answers 503. */
  readonly deadLetters?: DeadLetterReader | undefined
  /** Device files (metadata and blob store); the file routes are absent when undefined. */
  readonly files?: FilesDeps | undefined
  /** Sending commands; without it the command route answers 503. */
  readonly commands?: CommandSender | undefined
  /** TRIBUTARY_API_MAX_BODY_BYTES. */
  readonly maxBodyBytes: number
  readonly log: Logger
  /** The document's info.version. */
  readonly version?: string | undefined
  /** Where the built console is (console/dist by default). */
  readonly consoleDir?: string | undefined
}

export const OPENAPI_PATH = `${API_PREFIX}/openapi.json`
export const DOCS_PATH = `${API_PREFIX}/docs`
const PUBLIC_PATHS = new Set([OPENAPI_PATH, DOCS_PATH])
/** The document, the reference page, and a plain GET of the event WebSocket (426 says how to connect). */
const isPublic = (path: string): boolean => PUBLIC_PATHS.has(path) || EVENTS_PATH.test(path)

export interface ApiApp {
  readonly app: OpenAPIHono<ApiEnv>
  /** The OpenAPI 3.1 document, built once. */
  readonly document: Record<string, unknown>
}

export function createApiApp(options: ApiAppOptions): ApiApp {
  const { log } = options
  const app = new OpenAPIHono<ApiEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.target, result.error)
    },
  })

  app.onError((err, c) => problemResponse(c, err, log))
  app.use('*', async (c, next) => {
    const begin = performance.now()
    await next()
    log.debug(
      {
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        ms: Math.round(performance.now() - begin),
      },
      'api request',
    )
  })
  app.use(`${API_PREFIX}/*`, authenticate(options.auth, options.lookups, isPublic))
  // Every route's query against the schema it declares, before its own checks (api/query.ts).
  const query = createStrictQuery()
  app.use(`${API_PREFIX}/*`, query.middleware)
  // Counted while the body streams in, so an oversized chunked body is refused without buffering it.
  app.use(
    `${API_PREFIX}/*`,
    bodyLimit({
      maxSize: options.maxBodyBytes,
      onError: () => {
        throw new TributaryError(
          'REQUEST_TOO_LARGE',
          `the request body is larger than ${options.maxBodyBytes} bytes`,
        )
      },
    }),
  )

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'The admin token, an API token (`tat_...`), or a JWT from the tenant OIDC issuer.',
  })
  tenantRoutes(app, options.registry)
  deviceRoutes(app, options.registry)
  credentialRoutes(app, options.registry)
  tokenRoutes(app, options.registry)
  ttnSecretRoutes(app, options.registry)
  schemaRoutes(app, options.registry)
  routeRoutes(app, options.registry)
  configRoutes(app, options.registry)
  subscriptionRoutes(app, options.registry)
  subscriptionOperationRoutes(app, options.registry)
  deadLetterRoutes(app, options.registry, options.deadLetters)
  commandRoutes(app, options.commands)
  if (options.files !== undefined) fileRoutes(app, options.registry, options.files)
  eventRoutes(app)

  // The OpenAPI document, its reference page and the route table (405 or 404) are built on first
  // use, not at start: generating them costs about 0.2 s of CPU that a start need not pay.
  interface Reference {
    readonly document: Record<string, unknown>
    readonly body: string
    readonly page: string
    readonly routes: Array<{ method: string; pattern: RegExp }>
  }
  let reference: Reference | undefined
  const built = (): Reference => {
    if (reference !== undefined) return reference
    const document = app.getOpenAPI31Document({
      openapi: '3.1.0',
      info: {
        title: 'Tributary management API',
        version: options.version ?? '1',
        description:
          "Tenants, devices, device credentials, API tokens, channel schemas, route rules, webhook subscriptions, commands, and a tenant's events over a WebSocket. Errors are RFC 9457 problem documents; changes honour If-Match.",
      },
      security: [{ bearer: [] }],
      tags: [
        { name: 'tenants' },
        { name: 'devices' },
        { name: 'credentials' },
        { name: 'tokens' },
        { name: 'identity' },
        { name: 'schemas' },
        { name: 'routes' },
        { name: 'subscriptions' },
        { name: 'dead-letters' },
        { name: 'commands' },
        { name: 'files' },
        { name: 'events' },
      ],
    }) as unknown as Record<string, unknown>
    reference = {
      document,
      body: JSON.stringify(document),
      page: renderReference(document),
      routes: routeTable(document),
    }
    return reference
  }
  query.learn(app, [OPENAPI_PATH, DOCS_PATH])
  app.get(OPENAPI_PATH, (c) => c.body(built().body, 200, { 'content-type': 'application/json' }))
  app.get(DOCS_PATH, (c) => c.html(built().page))
  consoleRoutes(app, options.consoleDir)

  app.notFound((c) => {
    const allowed = built()
      .routes.filter((r) => r.pattern.test(c.req.path))
      .map((r) => r.method)
    if (allowed.length > 0) {
      if (allowed.includes('GET')) allowed.push('HEAD')
      const error = new TributaryError(
        'METHOD_NOT_ALLOWED',
        `${c.req.method} is not allowed here; use ${allowed.join(', ')}`,
        {
          details: { allow: allowed.join(', ') },
        },
      )
      return problemResponse(c, error, log)
    }
    return problemResponse(
      c,
      new TributaryError('ROUTE_NOT_FOUND', `no route ${c.req.method} ${c.req.path}; see ${DOCS_PATH}`),
      log,
    )
  })
  return {
    app,
    get document() {
      return built().document
    },
  }
}

/** Every documented operation as a method and a path pattern, to tell 405 from 404. */
function routeTable(document: Record<string, unknown>): Array<{ method: string; pattern: RegExp }> {
  const paths = (document['paths'] ?? {}) as Record<string, Record<string, unknown>>
  const table = [OPENAPI_PATH, DOCS_PATH].map((p) => ({ method: 'GET', pattern: new RegExp(`^${p}$`) }))
  for (const [path, operations] of Object.entries(paths)) {
    const pattern = new RegExp(`^${path.replaceAll(/\{[^}]+\}/g, '[^/]+')}$`)
    for (const method of Object.keys(operations)) table.push({ method: method.toUpperCase(), pattern })
  }
  return table
}
