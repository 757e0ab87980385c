// One rule for the query string of every route: the parameters a route declares (its `request.query`
// schema, the same one the OpenAPI document shows) are all it takes, checked against that schema
// before anything else the route does — role checks and lookups included — so an unknown parameter
// or a bad value (a cursor that is not a `next` value) is 400 for every caller and every route, even
// one whose handler never reads its query. A route that declares no query takes none.
import type { OpenAPIHono } from '@hono/zod-openapi'
import { z } from '@hono/zod-openapi'
import type { MiddlewareHandler } from 'hono'
import { TributaryError } from '../core/errors.ts'
import type { ApiEnv } from './env.ts'
import { validationError } from './problem.ts'

interface QueryRule {
  readonly method: string
  readonly pattern: RegExp
  /** The declared parameter names. */
  readonly names: ReadonlySet<string>
  readonly schema: z.ZodType | undefined
  /** Path parameters in the path: literal paths win over parameterised ones. */
  readonly params: number
}

export interface StrictQuery {
  /** Runs for every API request, after authentication. */
  readonly middleware: MiddlewareHandler<ApiEnv>
  /** Takes the rules of every route registered so far; `extra` paths take no query (GET). */
  learn(app: OpenAPIHono<ApiEnv>, extra?: readonly string[]): void
}

const patternOf = (path: string): RegExp =>
  new RegExp(`^${path.replaceAll(/[.*+?^$()|[\]\\]/g, '\\$&').replaceAll(/\{[^}]+\}/g, '[^/]+')}$`)

/** The parameter names of a declared query schema (a zod object, possibly piped). */
function namesOf(schema: z.ZodType | undefined): Set<string> {
  const object = schema instanceof z.ZodPipe ? schema.in : schema
  return new Set(object instanceof z.ZodObject ? Object.keys(object.shape) : [])
}

export function createStrictQuery(): StrictQuery {
  let rules: QueryRule[] = []

  function ruleFor(method: string, path: string): QueryRule | undefined {
    const wanted = method === 'HEAD' ? 'GET' : method
    return rules.find((r) => r.method === wanted && r.pattern.test(path))
  }

  return {
    learn(app, extra = []) {
      const found: QueryRule[] = extra.map((path) => ({
        method: 'GET',
        pattern: patternOf(path),
        names: new Set(),
        schema: undefined,
        params: 0,
      }))
      for (const definition of app.openAPIRegistry.definitions) {
        if (definition.type !== 'route') continue
        const { method, path, request } = definition.route
        const schema = request?.query
        found.push({
          method: method.toUpperCase(),
          pattern: patternOf(path),
          names: namesOf(schema),
          schema,
          params: (path.match(/\{/g) ?? []).length,
        })
      }
      rules = found.sort((a, b) => a.params - b.params)
    },

    middleware: async (c, next) => {
      const rule = ruleFor(c.req.method, c.req.path)
      // No route here: the 404 or 405 answer follows.
      if (rule === undefined) return next()
      const queries = c.req.queries()
      for (const name of Object.keys(queries)) {
        if (rule.names.has(name)) continue
        const shown = name.slice(0, 64)
        const takes =
          rule.names.size === 0
            ? 'this operation takes none'
            : `this operation takes ${[...rule.names].join(', ')}`
        throw new TributaryError('REQUEST_INVALID', `query.${shown}: unknown query parameter; ${takes}`, {
          details: { errors: [{ path: `query.${shown}`, message: `unknown query parameter; ${takes}` }] },
        })
      }
      if (rule.schema !== undefined) {
        // As hono's validator reads a query: one value as a string, a repeated parameter as a list.
        const value = Object.fromEntries(
          Object.entries(queries).map(([k, v]) => [k, v.length === 1 ? v[0] : v] as const),
        )
        const result = await rule.schema.safeParseAsync(value)
        if (!result.success) throw validationError('query', result.error)
      }
      await next()
    },
  }
}
