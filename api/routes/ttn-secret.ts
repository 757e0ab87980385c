// The TTN webhook secret of a tenant (tenant admins): set or generated, then kept only as its SHA-256
// in settings.ttn.webhookSecretSha256, which the device HTTP listener's TTN webhook checks
// (adapters/http/ttn/config.ts reads the same field; a test holds the two to the same hash).
import { createHash, randomBytes } from 'node:crypto'
import type { OpenAPIHono } from '@hono/zod-openapi'
import { createRoute, z } from '@hono/zod-openapi'
import { isTributaryError } from '../../core/errors.ts'
import type { Precondition } from '../../core/registry/store.ts'
import type { RegistryService } from '../../core/registry/service.ts'
import { API_PREFIX, requireJson, requires } from '../auth.ts'
import type { ApiEnv } from '../env.ts'
import { etag, precondition } from '../etag.ts'
import { IfMatchHeaders, TenantId, TenantParams } from '../schemas.ts'
import { WRITE_PROBLEMS, jsonBody, jsonResponse, problems } from './common.ts'

export const TTN_SECRET_PATH = `${API_PREFIX}/tenants/{tenant}/ttn-secret`

export const TtnSecretInput = z
  .strictObject({
    secret: z
      .string()
      .regex(/^[\x21-\x7e]{32,256}$/, { error: 'use 32-256 visible ASCII characters without spaces' })
      .optional()
      .openapi({ description: 'Your own secret; omit it to have a random one (256 bits) generated.' }),
  })
  .openapi('TtnSecretInput')

export const TtnSecret = z
  .object({
    tenant: TenantId,
    secret: z.string().openapi({ description: 'The webhook secret. Shown this once; store it in TTN now.' }),
    path: z
      .string()
      .openapi({ description: 'Where TTN posts on the device HTTP listener.', example: '/ttn/v3' }),
    headers: z.record(z.string(), z.string()).openapi({
      description: 'The custom headers to add to the TTN webhook.',
      example: { 'X-Tributary-Tenant': 'acme', 'X-Tributary-Webhook-Secret': 'tws_...' },
    }),
  })
  .openapi('TtnSecret')

const put = createRoute({
  method: 'put',
  path: TTN_SECRET_PATH,
  operationId: 'setTtnWebhookSecret',
  tags: ['tenants'],
  summary: 'Set or generate the TTN webhook secret (tenant admin)',
  description:
    'Replaces the secret the TTN v3 webhook (`POST /ttn/v3` on the device HTTP listener) must send; the previous one stops working at once. Only its SHA-256 is stored, in `settings.ttn.webhookSecretSha256`; the other TTN settings are kept. See docs/ttn.md.',
  middleware: [requires('admin'), requireJson],
  request: {
    params: TenantParams,
    headers: IfMatchHeaders,
    body: jsonBody(TtnSecretInput, 'An own secret, or {}.'),
  },
  responses: {
    200: jsonResponse(TtnSecret, 'The secret, shown this once, and how to set up the webhook.', 'etag'),
    ...problems(...WRITE_PROBLEMS),
  },
})

/** SHA-256, lowercase hex: the form adapters/http/ttn/config.ts compares. */
export const ttnSecretHash = (secret: string): string =>
  createHash('sha256').update(secret, 'utf8').digest('hex')

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** Without If-Match, a concurrent change of the tenant is retried on the new version this often. */
const ATTEMPTS = 3

export function ttnSecretRoutes(app: OpenAPIHono<ApiEnv>, registry: RegistryService): void {
  app.openapi(put, async (c) => {
    const { tenant: id } = c.req.valid('param')
    const given: Precondition | undefined = precondition(c.req.valid('header')['if-match'])
    const secret = c.req.valid('json').secret ?? `tws_${randomBytes(32).toString('base64url')}`
    const hash = ttnSecretHash(secret)
    for (let attempt = 1; ; attempt++) {
      const tenant = await registry.getTenant(id)
      const ttn = isRecord(tenant.settings['ttn']) ? tenant.settings['ttn'] : {}
      const settings = { ...tenant.settings, ttn: { ...ttn, webhookSecretSha256: hash } }
      try {
        const updated = await registry.updateTenant(id, { settings }, given ?? { ifVersion: tenant.version })
        c.header('ETag', etag(updated.version))
        c.header('Cache-Control', 'no-store')
        return c.json(
          {
            tenant: id,
            secret,
            path: '/ttn/v3',
            headers: { 'X-Tributary-Tenant': id, 'X-Tributary-Webhook-Secret': secret },
          },
          200,
        )
      } catch (err) {
        if (given !== undefined || attempt >= ATTEMPTS || !isTributaryError(err, 'REGISTRY_VERSION_MISMATCH'))
          throw err
      }
    }
  })
}
