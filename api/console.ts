// The web console's static files under /console: the page and its content-hashed assets, as
// `npm run console:build` writes them to console/dist. The page is only an API client; it gets a
// Content-Security-Policy that allows scripts, styles and connections to this origin alone.
import { readFile } from 'node:fs/promises'
import { extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Context, Hono } from 'hono'
import { TributaryError } from '../core/errors.ts'
import type { ApiEnv } from './env.ts'

export const CONSOLE_PATH = '/console'
/** Where the build writes the console, next to its sources. */
export const CONSOLE_DIR = fileURLToPath(new URL('../console/dist/', import.meta.url))

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.png': 'image/png',
}

// 'self' covers the event WebSocket of this origin (ws: and wss:, CSP Level 3).
const POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
}

/** Where a person opens the console: a wildcard host becomes loopback, an IPv6 one gets brackets. */
export function consoleAddress(host: string, port: number): string {
  const shown = host === '' || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
  return `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}${CONSOLE_PATH}`
}

/** Asset names as the build writes them (`index-3f2a1b.js`): no folders, no dot files. */
const ASSET_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/

async function send(c: Context<ApiEnv>, file: string, cache: string): Promise<Response> {
  const type = CONTENT_TYPES[extname(file)]
  let body: Buffer
  try {
    if (type === undefined) throw new Error('unknown type')
    body = await readFile(file)
  } catch {
    throw new TributaryError('ROUTE_NOT_FOUND', `no console file ${c.req.path.slice(0, 200)}`)
  }
  return c.body(new Uint8Array(body), 200, {
    ...SECURITY_HEADERS,
    'content-type': type,
    'cache-control': cache,
  })
}

/** GET /console (and /console/): the page, never cached; /console/assets/*: hashed, cached for a year. */
export function consoleRoutes(app: Hono<ApiEnv>, dir: string = CONSOLE_DIR): void {
  const page = async (c: Context<ApiEnv>): Promise<Response> => {
    try {
      return await send(c, join(dir, 'index.html'), 'no-cache')
    } catch {
      throw new TributaryError(
        'ROUTE_NOT_FOUND',
        'the console is not built: run `npm run console:build` (npm start and npm ci build it)',
      )
    }
  }
  app.get(CONSOLE_PATH, page)
  app.get(`${CONSOLE_PATH}/`, page)
  app.get(`${CONSOLE_PATH}/assets/:name`, (c) => {
    const name = c.req.param('name')
    if (!ASSET_NAME.test(name))
      throw new TributaryError('ROUTE_NOT_FOUND', `no console file ${c.req.path.slice(0, 200)}`)
    return send(c, join(dir, 'assets', name), 'public, max-age=31536000, immutable')
  })
}
