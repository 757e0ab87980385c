// Input checks of the registry service: every bad input is REGISTRY_INVALID naming its field.
import { describe, expect, it } from 'vitest'
import { isTributaryError } from '../../../core/errors.ts'
import { X509Certificate } from 'node:crypto'
import {
  DEFAULT_DEVICE_SPEC,
  apiTokenExpiry,
  checkListOptions,
  credentialFields,
  deviceSpec,
} from '../../../core/registry/validate.ts'
import { DEFAULT_TENANT_SPEC, tenantSpec } from '../../../core/registry/validate-tenant.ts'
import {
  commonNameOf,
  fingerprintOf,
  normaliseFingerprint,
  parseCertificate,
  trustAnchorFrom,
} from '../../../core/registry/x509.ts'
import { CA_PEM, DEVICE_FINGERPRINT, DEVICE_PEM } from './certs.ts'

const now = new Date('2030-01-01T00:00:00Z')

/** Runs `fn`, expects REGISTRY_INVALID, and returns the field it names. */
function invalidField(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    if (!isTributaryError(err, 'REGISTRY_INVALID')) throw err
    expect(err.status).toBe(400)
    expect(err.details?.['reason']).toEqual(expect.any(String))
    return err.details?.['field']
  }
  throw new Error('expected REGISTRY_INVALID')
}

const tenant = (input: Record<string, unknown>) => tenantSpec(input, DEFAULT_TENANT_SPEC, now)
const jwk = {
  kty: 'EC',
  crv: 'P-256',
  x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
  y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
}

describe('tenant input', () => {
  it('fills defaults and keeps what update leaves out', () => {
    expect(tenant({})).toEqual(DEFAULT_TENANT_SPEC)
    const base = tenant({ enabled: false, quotas: { maxDevices: 5 } })
    const next = tenantSpec({ quotas: { maxMessagesPerSecond: 10 } }, base, now)
    expect(next.enabled).toBe(false)
    expect(next.quotas).toEqual({ ...DEFAULT_TENANT_SPEC.quotas, maxDevices: 5, maxMessagesPerSecond: 10 })
  })

  it('rejects unknown fields and wrong types', () => {
    expect(invalidField(() => tenant({ enabeld: true }))).toBe('enabeld')
    expect(invalidField(() => tenant({ enabled: 'yes' }))).toBe('enabled')
    expect(invalidField(() => tenant({ quotas: { maxDevices: -1 } }))).toBe('quotas.maxDevices')
    expect(invalidField(() => tenant({ quotas: { maxDevices: 1.5 } }))).toBe('quotas.maxDevices')
    expect(invalidField(() => tenant({ quotas: { max: 1 } }))).toBe('quotas.max')
    expect(tenant({ quotas: { maxDevices: null, maxMessagesPerSecond: 0 } }).quotas).toEqual({
      ...DEFAULT_TENANT_SPEC.quotas,
      maxDevices: null,
      maxMessagesPerSecond: 0,
    })
  })

  it('accepts a non-empty subset of the auth methods only', () => {
    expect(tenant({ authMethods: ['token', 'password', 'token'] }).authMethods).toEqual(['password', 'token'])
    expect(invalidField(() => tenant({ authMethods: [] }))).toBe('authMethods')
    expect(invalidField(() => tenant({ authMethods: ['password', 'magic'] }))).toBe('authMethods')
  })

  it('bounds settings: JSON only, 16 KiB, 8 levels', () => {
    expect(tenant({ settings: { ttn: { map: [1, 'a', null, true] } } }).settings).toEqual({
      ttn: { map: [1, 'a', null, true] },
    })
    let deep: Record<string, unknown> = {}
    const eight = deep
    for (let i = 0; i < 7; i++) deep = deep['a'] = {}
    expect(tenant({ settings: eight }).settings).toEqual(eight)
    deep['a'] = {}
    expect(invalidField(() => tenant({ settings: eight }))).toBe('settings')
    expect(invalidField(() => tenant({ settings: { big: 'x'.repeat(16 * 1024) } }))).toBe('settings')
    expect(invalidField(() => tenant({ settings: { n: Number.NaN } }))).toBe('settings')
    expect(invalidField(() => tenant({ settings: { d: new Date() } }))).toBe('settings')
    expect(invalidField(() => tenant({ settings: [1] }))).toBe('settings')
  })

  it('checks OIDC settings: https issuer (http on loopback), audience, exactly one key source, public keys', () => {
    const oidc = tenant({
      oidc: {
        issuer: 'https://id.example.com',
        audience: 'tributary',
        jwksUri: 'https://id.example.com/jwks',
      },
    }).oidc
    expect(oidc).toEqual({
      issuer: 'https://id.example.com',
      audience: 'tributary',
      jwksUri: 'https://id.example.com/jwks',
      rolesClaim: 'roles',
    })
    expect(
      tenant({ oidc: { issuer: 'http://127.0.0.1:4000', audience: 'a', jwks: [jwk], rolesClaim: 'groups' } })
        .oidc?.rolesClaim,
    ).toBe('groups')
    expect(
      tenant({ oidc: { issuer: 'http://localhost:4000/x', audience: 'a', jwks: [jwk] } }).oidc?.jwks,
    ).toEqual([jwk])
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ issuer: 'http://id.example.com', audience: 'a', jwks: [jwk] }, 'oidc.issuer'],
      [{ issuer: 'not a url', audience: 'a', jwks: [jwk] }, 'oidc.issuer'],
      [{ issuer: 'https://id.example.com', audience: '', jwks: [jwk] }, 'oidc.audience'],
      [{ issuer: 'https://id.example.com', audience: 'a' }, 'oidc'],
      [{ issuer: 'https://id.example.com', audience: 'a', jwks: [jwk], jwksUri: 'https://x' }, 'oidc'],
      [{ issuer: 'https://id.example.com', audience: 'a', jwks: [{ ...jwk, d: 'private' }] }, 'oidc.jwks[0]'],
      [
        { issuer: 'https://id.example.com', audience: 'a', jwks: [{ kty: 'oct', k: 'c2VjcmV0' }] },
        'oidc.jwks[0]',
      ],
      [{ issuer: 'https://id.example.com', audience: 'a', jwks: [] }, 'oidc.jwks'],
      [{ issuer: 'https://id.example.com', audience: 'a', jwks: [jwk], extra: 1 }, 'oidc.extra'],
    ]
    for (const [input, field] of bad)
      expect(
        invalidField(() => tenant({ oidc: input })),
        JSON.stringify(input),
      ).toBe(field)
    expect(tenant({ oidc: null }).oidc).toBeNull()
  })

  it('derives trust anchors from CA certificates and refuses the rest', () => {
    const [anchor] = tenant({ trustAnchors: [CA_PEM] }).trustAnchors
    expect(anchor?.subject).toContain('CN=Test CA')
    expect(anchor?.fingerprint).toMatch(/^[0-9a-f]{64}$/)
    expect(Date.parse(anchor!.notAfter)).toBeGreaterThan(now.getTime())
    expect(invalidField(() => tenant({ trustAnchors: [DEVICE_PEM] }))).toBe('trustAnchors[0]')
    expect(invalidField(() => tenant({ trustAnchors: [CA_PEM, CA_PEM] }))).toBe('trustAnchors[1]')
    expect(invalidField(() => tenant({ trustAnchors: ['garbage'] }))).toBe('trustAnchors[0]')
    expect(invalidField(() => tenant({ trustAnchors: [CA_PEM + CA_PEM] }))).toBe('trustAnchors[0]')
    expect(invalidField(() => tenant({ trustAnchors: Array(17).fill(CA_PEM) }))).toBe('trustAnchors')
    // A CA that expired by `now` is refused.
    expect(
      invalidField(() => tenantSpec({ trustAnchors: [CA_PEM] }, DEFAULT_TENANT_SPEC, new Date('2200-01-01'))),
    ).toBe('trustAnchors[0]')
  })
})

describe('device input', () => {
  const device = (input: Record<string, unknown>) => deviceSpec(input, DEFAULT_DEVICE_SPEC, 'dev-1')

  it('checks labels: ≤64 pairs, keys of the documented charset up to 63, values up to 256', () => {
    expect(device({ labels: { 'app.kubernetes.io/name': 'x', floor: '' } }).labels).toEqual({
      'app.kubernetes.io/name': 'x',
      floor: '',
    })
    expect(invalidField(() => device({ labels: { 'bad key': 'x' } }))).toBe('labels.bad key')
    expect(invalidField(() => device({ labels: { ['k'.repeat(64)]: 'x' } }))).toBe(`labels.${'k'.repeat(64)}`)
    expect(invalidField(() => device({ labels: { k: 'v'.repeat(257) } }))).toBe('labels.k')
    expect(invalidField(() => device({ labels: { k: 1 } }))).toBe('labels.k')
    expect(invalidField(() => device({ labels: { k: 'a\nb' } }))).toBe('labels.k')
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']))
    expect(invalidField(() => device({ labels: many }))).toBe('labels')
  })

  it('checks gateways: device ids, deduplicated, never the device itself', () => {
    expect(device({ gateways: ['gw-1', 'gw-1', 'gw-2'] }).gateways).toEqual(['gw-1', 'gw-2'])
    expect(invalidField(() => device({ gateways: ['gw/1'] }))).toBe('gateways[0]')
    expect(invalidField(() => device({ gateways: ['dev-1'] }))).toBe('gateways[0]')
    expect(invalidField(() => device({ gateways: 'gw-1' }))).toBe('gateways')
  })
})

describe('credential input', () => {
  it("passwords are 1-256 characters here; the tenant's minimum is the service's check", () => {
    expect(credentialFields({ type: 'password', password: 'seven c' }, now)).toMatchObject({
      type: 'password',
      enabled: true,
      expiresAt: null,
    })
    expect(invalidField(() => credentialFields({ type: 'password', password: '' }, now))).toBe('password')
    expect(invalidField(() => credentialFields({ type: 'password', password: 'x'.repeat(257) }, now))).toBe(
      'password',
    )
  })

  it('x509 by subject CN, by fingerprint (normalised) or by certificate (its fingerprint)', () => {
    expect(credentialFields({ type: 'x509', subjectCn: 'sensor-1' }, now)).toMatchObject({
      match: 'cn',
      subjectCn: 'sensor-1',
    })
    const colons = DEVICE_FINGERPRINT.toUpperCase().match(/../g)!.join(':')
    expect(credentialFields({ type: 'x509', fingerprint: colons }, now)).toMatchObject({
      match: 'fingerprint',
      fingerprint: DEVICE_FINGERPRINT,
    })
    expect(credentialFields({ type: 'x509', certificate: DEVICE_PEM }, now)).toMatchObject({
      match: 'fingerprint',
      fingerprint: DEVICE_FINGERPRINT,
    })
    expect(
      invalidField(() =>
        credentialFields({ type: 'x509', subjectCn: 'a', fingerprint: DEVICE_FINGERPRINT }, now),
      ),
    ).toBe('x509')
    expect(invalidField(() => credentialFields({ type: 'x509' }, now))).toBe('x509')
    expect(invalidField(() => credentialFields({ type: 'x509', fingerprint: 'abc' }, now))).toBe(
      'fingerprint',
    )
    expect(invalidField(() => credentialFields({ type: 'x509', certificate: 'nope' }, now))).toBe(
      'certificate',
    )
    expect(invalidField(() => credentialFields({ type: 'x509', subjectCn: 'c'.repeat(257) }, now))).toBe(
      'subjectCn',
    )
  })

  it('PSK keys are 16-64 bytes of hex, or generated when omitted', () => {
    expect(credentialFields({ type: 'psk' }, now)).toMatchObject({ type: 'psk', key: undefined })
    const fields = credentialFields({ type: 'psk', key: 'ab'.repeat(16) }, now)
    expect(fields.type === 'psk' && fields.key?.length).toBe(16)
    expect(invalidField(() => credentialFields({ type: 'psk', key: 'ab'.repeat(15) }, now))).toBe('key')
    expect(invalidField(() => credentialFields({ type: 'psk', key: 'ab'.repeat(65) }, now))).toBe('key')
    expect(invalidField(() => credentialFields({ type: 'psk', key: 'zz'.repeat(16) }, now))).toBe('key')
  })

  it('expiry is an ISO time in the future, or null; unknown types and fields are refused', () => {
    expect(credentialFields({ type: 'token', expiresAt: '2030-02-01T00:00:00+01:00' }, now).expiresAt).toBe(
      '2030-01-31T23:00:00.000Z',
    )
    expect(
      invalidField(() => credentialFields({ type: 'token', expiresAt: '2029-12-31T00:00:00Z' }, now)),
    ).toBe('expiresAt')
    expect(invalidField(() => credentialFields({ type: 'token', expiresAt: '2031' }, now))).toBe('expiresAt')
    expect(invalidField(() => credentialFields({ type: 'token', secret: 'mine' }, now))).toBe('secret')
    expect(invalidField(() => credentialFields({ type: 'magic' }, now))).toBe('type')
  })
})

describe('API tokens and lists', () => {
  it('expire in 90 days by default and at most two years ahead', () => {
    expect(apiTokenExpiry(undefined, now)).toBe('2030-04-01T00:00:00.000Z')
    expect(apiTokenExpiry('2031-12-31T00:00:00Z', now)).toBe('2031-12-31T00:00:00.000Z')
    expect(invalidField(() => apiTokenExpiry('2032-01-01T00:00:01Z', now))).toBe('expiresAt')
    expect(invalidField(() => apiTokenExpiry(null, now))).toBe('expiresAt')
  })

  it('list options: limit 1-1000, bounded cursor', () => {
    expect(checkListOptions({ limit: 5, after: 'abc' })).toEqual({ limit: 5, after: 'abc' })
    expect(invalidField(() => checkListOptions({ limit: 0 }))).toBe('limit')
    expect(invalidField(() => checkListOptions({ limit: 1001 }))).toBe('limit')
    expect(invalidField(() => checkListOptions({ after: 'x'.repeat(513) }))).toBe('after')
  })
})

describe('x509 helpers', () => {
  it('parse exactly one certificate and read its CN and fingerprint', () => {
    const certificate = parseCertificate(DEVICE_PEM)
    expect(commonNameOf(certificate)).toBe('sensor-1')
    expect(fingerprintOf(certificate)).toBe(DEVICE_FINGERPRINT)
    expect(fingerprintOf(new X509Certificate(DEVICE_PEM))).toBe(DEVICE_FINGERPRINT)
    expect(() => parseCertificate(DEVICE_PEM + CA_PEM)).toThrow(/exactly one/)
    expect(normaliseFingerprint(`${DEVICE_FINGERPRINT}0`)).toBeUndefined()
    expect(trustAnchorFrom(CA_PEM, now).certificate).toContain('BEGIN CERTIFICATE')
  })
})
