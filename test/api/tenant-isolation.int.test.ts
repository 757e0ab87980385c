// Tenant isolation: every operation of the OpenAPI document is attacked with tenant B's credentials
// (an admin API token, an OIDC admin JWT from B's issuer, and a B-issuer JWT that claims A's
// audience) against tenant A's resources. Each attack is refused exactly as for a tenant that does
// not exist, and A's data is unchanged afterwards.
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createUploads } from '../../core/blobs/uploads.ts'
import type { ApiHarness } from './harness.ts'
import { itemIds, startApi } from './harness.ts'
import type { TestIssuer } from './issuer.ts'
import { startIssuer } from './issuer.ts'

let api: ApiHarness
let issuerA: TestIssuer
let issuerB: TestIssuer
const attackers: Record<string, string> = {}
const target = {
  tenant: 'alpha',
  device: 'a-device',
  credential: '',
  token: '',
  subscription: '',
  channel: 'alpha/private',
  file: '',
}

/** A valid body for each operation that takes one, so validation is never why an attack fails. */
const BODIES: Record<string, unknown> = {
  createTenant: { id: 'stolen' },
  updateTenant: { settings: { owned: true } },
  createDevice: { id: 'implant' },
  updateDevice: { enabled: false, labels: { owned: 'yes' } },
  setDevicePassword: { password: 'hijacked-password' },
  createCredential: { type: 'token' },
  updateCredential: { enabled: false },
  createApiToken: { name: 'backdoor', role: 'admin' },
  setTtnWebhookSecret: { secret: 'attacker-chosen-secret-0123456789abcdef' },
  putChannelSchema: { schema: { type: 'object' } },
  putRouteTable: { rules: [] },
  createSubscription: { url: 'https://attacker.example.com/hook' },
  updateSubscription: { url: 'https://attacker.example.com/hook' },
  pauseSubscription: {},
  resumeSubscription: {},
  rotateSubscriptionSecret: {},
  replaySubscription: { from: '2026-01-01T00:00:00.000Z' },
  redriveSubscriptionDeadLetters: {},
  sendCommand: { command: 'unlock' },
  putTenantConfig: { owned: true },
  patchTenantConfig: { owned: true },
  putAppVersionConfig: { owned: true },
  patchAppVersionConfig: { owned: true },
  putDeviceConfig: { owned: true },
  patchDeviceConfig: { owned: true },
  putConfigRule: { selector: { owned: 'yes' }, config: { owned: true } },
  patchConfigRule: { config: { owned: true } },
  publishFileToDevice: {},
  publishFileToFolder: {},
}

interface Operation {
  readonly method: string
  readonly path: string
  readonly operationId: string
}

let operations: Operation[] = []

beforeAll(async () => {
  // The issuers serve their JWKS on loopback: allowed as the operator allows it (TRIBUTARY_WEBHOOK_ALLOW_PRIVATE).
  ;[api, issuerA, issuerB] = await Promise.all([
    startApi({ allowPrivateTargets: true }),
    startIssuer('ES256'),
    startIssuer('RS256'),
  ])
  const { registry } = api
  await registry.createTenant('alpha', {
    oidc: { issuer: issuerA.issuer, audience: 'alpha-api', jwksUri: issuerA.jwksUri, rolesClaim: 'roles' },
    settings: { marker: 'alpha-private' },
  })
  await registry.createTenant('bravo', {
    oidc: { issuer: issuerB.issuer, audience: 'bravo-api', jwksUri: issuerB.jwksUri, rolesClaim: 'roles' },
  })
  await registry.createDevice('alpha', target.device, { labels: { owner: 'alpha' } })
  await registry.setPassword('alpha', target.device, 'alpha-password')
  target.credential = (
    await registry.createCredential('alpha', target.device, { type: 'token' })
  ).credential.id
  target.token = (await registry.createApiToken('alpha', { name: 'alpha-admin', role: 'admin' })).token.id
  await registry.createDevice('bravo', 'b-device', {})
  // A's schema and rules carry its private marker; B has a schema of the same channel.
  await registry.putChannelSchema('alpha', target.channel, { title: 'alpha-private' })
  await registry.putRouteTable('alpha', [
    { name: 'alpha-private', match: {}, actions: [{ action: 'reject', reason: 'alpha-private' }] },
  ])
  await registry.putChannelSchema('bravo', target.channel, { title: 'bravo' })
  // A's desired configuration at every level carries the marker; B has documents of the same names.
  await registry.updateDevice('alpha', target.device, { appVersion: 'v1' })
  for (const scope of [
    { level: 'tenant' },
    { level: 'app-version', appVersion: 'v1' },
    { level: 'device', device: target.device },
  ] as const) {
    await registry.putConfig('alpha', scope, { marker: 'alpha-private' })
  }
  const sent = await registry.getEffectiveConfig('alpha', target.device)
  await registry.configDelivered('alpha', target.device, sent.configId, 'http')
  await registry.configApplied(
    'alpha',
    target.device,
    { configId: sent.configId, statusCode: 500, reasonPhrase: 'alpha-private' },
    'http',
  )
  await registry.putConfig('bravo', { level: 'app-version', appVersion: 'v1' }, { marker: 'bravo' })
  // A's rule, which the target device's labels match, carries the marker; B has a rule of the same name.
  await registry.updateDevice('alpha', target.device, { labels: { fleet: 'private' } })
  await registry.putConfigRule('alpha', 'private', {
    selector: { fleet: 'private' },
    config: { rule: 'alpha-private' },
  })
  await registry.putConfigRule('bravo', 'private', {
    selector: { fleet: 'private' },
    config: { rule: 'bravo' },
  })
  target.subscription = (
    await registry.createSubscription('alpha', { url: 'https://alpha-private.example.com/hook' })
  ).subscription.id
  await registry.createSubscription('bravo', { url: 'https://bravo.example.com/hook' })
  // A dead letter of A whose detail an attack must never show.
  const at = '2026-01-01T00:00:00.000Z'
  await api.store.recordDeadLetters([
    {
      tenant: 'alpha',
      id: 'alpha-letter',
      partition: 0,
      offset: 0,
      device: target.device,
      type: null,
      subject: null,
      step: 'validate',
      reason: 'schema-invalid',
      detail: 'alpha-private',
      firstFailure: at,
      deadLetteredAt: at,
      contentType: null,
      data: null,
      subscription: target.subscription,
    },
  ])
  // A file of A, so that the file routes (metadata, content, download URL, delete) aim at a real one.
  const uploads = createUploads({
    files: api.store.files,
    blobs: api.blobs,
    maxFileBytes: 1024,
    tokenTtlMs: 60_000,
  })
  const secret = Buffer.from('alpha-private')
  const issued = await uploads.issue({
    tenant: 'alpha',
    device: target.device,
    name: 'private.txt',
    size: secret.length,
  })
  await uploads.receive({
    fileId: issued.fileId,
    token: issued.token,
    body: Readable.from([secret]),
    protocol: 'http',
  })
  target.file = issued.fileId
  // Published to A's device and to a folder, so that taking a publication back aims at a real one.
  await api.files.publish('alpha', target.file, { device: target.device }, new Date())
  await api.files.publish('alpha', target.file, { folder: 'firmware' }, new Date())
  // The same resource names exist in B, so that a mix-up of tenants would find something.
  await registry.createApiToken('bravo', { name: 'alpha-admin', role: 'admin' })

  attackers['B admin API token'] = (
    await registry.createApiToken('bravo', { name: 'attacker', role: 'admin' })
  ).secret
  attackers["B's OIDC admin JWT"] = await issuerB.sign({ roles: ['admin'] }, { audience: 'bravo-api' })
  attackers["a B-issuer JWT with A's audience"] = await issuerB.sign(
    { roles: ['admin'] },
    { audience: 'alpha-api' },
  )

  const document = (await (await fetch(`${api.url}/api/v1/openapi.json`)).json()) as {
    paths: Record<string, Record<string, { operationId: string }>>
  }
  operations = Object.entries(document.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({
      method: method.toUpperCase(),
      path,
      operationId: op.operationId,
    })),
  )
})

afterAll(async () => {
  await api.close()
  await Promise.all([issuerA.close(), issuerB.close()])
})

/** Everything of tenant A, as the admin token reads it. */
async function snapshotOfA(): Promise<unknown> {
  const get = async (path: string) => (await api.call('GET', `/api/v1/tenants/alpha${path}`)).body as unknown
  return {
    tenant: await get(''),
    devices: await get('/devices'),
    credentials: await get(`/devices/${target.device}/credentials`),
    tokens: await get('/tokens'),
    schemas: await get('/schemas'),
    routes: await get('/routes'),
    config: await get('/config'),
    appVersionConfig: await get('/config/app-versions/v1'),
    deviceConfig: await get(`/devices/${target.device}/config`),
    effectiveConfig: await get(`/devices/${target.device}/config/effective`),
    configStatus: await get('/config/status'),
    configRules: await get('/config/rules'),
    configRule: await get('/config/rules/private'),
    subscriptions: await get('/subscriptions'),
    deadLetters: await get('/dead-letters'),
    subscriptionDeadLetters: await get(`/subscriptions/${target.subscription}/dead-letters`),
    files: await get('/files'),
    publications: await get(`/files/${target.file}/publications`),
    tenants: ((await api.call('GET', '/api/v1/tenants')).body as { items: Array<{ id: string }> }).items.map(
      (t) => t.id,
    ),
  }
}

function concrete(path: string, tenant: string): string {
  return path
    .replace('{tenant}', tenant)
    .replace('{device}', target.device)
    .replace('{channel}', encodeURIComponent(target.channel))
    .replace('{name}', 'unlock')
    .replace('{appVersion}', 'v1')
    .replace('{rule}', 'private')
    .replace('{folder}', 'firmware')
    .replace(
      '{id}',
      path.includes('/tokens/')
        ? target.token
        : path.includes('/subscriptions/')
          ? target.subscription
          : path.includes('/files/')
            ? target.file
            : target.credential,
    )
}

describe('tenant isolation', () => {
  it('covers every operation of the document', () => {
    expect(operations.length).toBeGreaterThanOrEqual(21)
    for (const op of operations) {
      if (['POST', 'PUT', 'PATCH'].includes(op.method))
        expect(BODIES, op.operationId).toHaveProperty(op.operationId)
    }
  })

  it("refuses every route of tenant A to tenant B's credentials, as for a tenant that does not exist", async () => {
    const before = await snapshotOfA()
    let attacks = 0
    for (const [who, token] of Object.entries(attackers)) {
      for (const op of operations.filter((o) => o.path.includes('{tenant}'))) {
        const body = BODIES[op.operationId]
        const headers = { 'if-match': '"1"' }
        for (const tenant of ['alpha', '%61lpha']) {
          const reply = await api.call(op.method, concrete(op.path, tenant), { token, body, headers })
          attacks++
          const label = `${who}: ${op.method} ${op.path} (${tenant})`
          if (op.operationId === 'streamEvents') {
            // The event WebSocket: a plain GET is told 426 before anyone is authenticated, the same
            // for every tenant. The upgrade itself answers another tenant's token 404, as for a
            // tenant that does not exist (test/consumers/websocket/auth.int.test.ts).
            const ghost = await api.call(op.method, concrete(op.path, 'ghost'), { token })
            expect([reply.status, ghost.status], label).toEqual([426, 426])
            expect(reply.text.replace(/%61lpha|alpha/g, 'ghost'), label).toBe(ghost.text)
            continue
          }
          expect([403, 404], label).toContain(reply.status)
          expect(reply.status, label).toBe(404)
          expect(reply.body.code, label).toBe('REGISTRY_NOT_FOUND')
          expect(reply.text, label).not.toContain('alpha-private')
          // A tenant that does not exist gets the very same answer.
          const ghost = await api.call(op.method, concrete(op.path, 'ghost'), { token, body, headers })
          expect(ghost.status, label).toBe(reply.status)
          expect(String(ghost.body.detail).replace('ghost', 'alpha'), label).toBe(reply.body.detail)
        }
      }
    }
    expect(attacks).toBeGreaterThanOrEqual(3 * 18 * 2)
    await api.settle()
    expect(await snapshotOfA()).toEqual(before)
  })

  it("shows B's callers nothing of A on the routes outside any tenant", async () => {
    const before = await snapshotOfA()
    for (const [who, token] of Object.entries(attackers)) {
      for (const op of operations.filter((o) => !o.path.includes('{tenant}'))) {
        const path = op.operationId === 'whoami' ? `${op.path}?tenant=alpha` : op.path
        const reply = await api.call(op.method, path, { token, body: BODIES[op.operationId] })
        const label = `${who}: ${op.method} ${path}`
        expect(reply.text, label).not.toContain('alpha')
        if (who === 'B admin API token') {
          // The API token names its tenant: it sees B only, and may not create tenants.
          if (op.operationId === 'listTenants') expect(itemIds(reply), label).toEqual(['bravo'])
          else if (op.operationId === 'whoami') expect(reply.body.tenant, label).toBe('bravo')
          else expect(reply.status, label).toBe(403)
        } else {
          // A JWT is checked against the issuer of the tenant it is used for; here that is A's, or none.
          expect(reply.status, label).toBe(401)
        }
      }
    }
    expect(await snapshotOfA()).toEqual(before)
  })

  it("still lets A's own callers in (the attacks failed for the right reason)", async () => {
    const own = await issuerA.sign({ roles: ['admin'] }, { audience: 'alpha-api' })
    expect(
      (await api.call('GET', `/api/v1/tenants/alpha/devices/${target.device}`, { token: own })).status,
    ).toBe(200)
    const url = await api.call('GET', `/api/v1/tenants/alpha/files/${target.file}/url`, { token: own })
    expect(url.status).toBe(200)
    expect(url.body.url).toContain('/v1/files/download/alpha/')
    const bravo = attackers['B admin API token']!
    expect((await api.call('GET', '/api/v1/tenants/bravo/devices/b-device', { token: bravo })).status).toBe(
      200,
    )
    expect(
      (
        await api.call('GET', '/api/v1/tenants/bravo/devices/b-device', {
          token: attackers["B's OIDC admin JWT"],
        })
      ).status,
    ).toBe(200)
  })
})
