// Client certificate chains checked against tenant trust anchors (issuer, signature, validity),
// and the issuer → tenants index for certificates that arrive without a username.
import { X509Certificate } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createAnchorIndex } from '../../../adapters/mqtt/anchors.ts'
import { verifyChain } from '../../../adapters/mqtt/certificates.ts'
import { silentLogger } from '../../../core/log.ts'
import type { Tenant, TrustAnchor } from '../../../core/registry/model.ts'
import { trustAnchorFrom } from '../../../core/registry/x509.ts'
import { CA_PEM, DEVICE_PEM } from '../../core/registry/certs.ts'

const now = new Date('2027-06-01T00:00:00Z')
const anchor = trustAnchorFrom(CA_PEM, now)
const device = new X509Certificate(DEVICE_PEM)
const ca = new X509Certificate(CA_PEM)
/** A trust anchor record whose certificate is not the CA (the device certificate itself). */
const unrelated: TrustAnchor = { ...anchor, certificate: DEVICE_PEM, fingerprint: 'f'.repeat(64) }

describe('verifyChain', () => {
  it('accepts a leaf the anchor signed, while both are valid', () => {
    expect(verifyChain([device], [anchor], now)).toBe(true)
    expect(verifyChain([device], [unrelated, anchor], now)).toBe(true)
  })

  it('refuses without the signing anchor, outside the validity dates, or with a CA as the leaf', () => {
    expect(verifyChain([device], [], now)).toBe(false)
    expect(verifyChain([device], [unrelated], now)).toBe(false)
    expect(verifyChain([], [anchor], now)).toBe(false)
    expect(verifyChain([device], [anchor], new Date('2200-01-01T00:00:00Z'))).toBe(false)
    expect(verifyChain([device], [anchor], new Date('2020-01-01T00:00:00Z'))).toBe(false)
    expect(verifyChain([ca], [anchor], now)).toBe(false)
  })

  it('follows a CA the client sent up to the anchor', () => {
    // The CA as an "intermediate" the client presents: the chain leaf → CA → anchor (the same CA).
    expect(verifyChain([device, ca], [anchor], now)).toBe(true)
    expect(verifyChain([device, ca], [], now)).toBe(false)
  })
})

describe('createAnchorIndex', () => {
  const tenant = (id: string, anchors: TrustAnchor[]): Tenant =>
    ({ id, trustAnchors: anchors }) as unknown as Tenant

  it('finds the tenants trusting an issuer across pages, and follows changes', async () => {
    const rows = new Map([
      ['a', tenant('a', [anchor])],
      ['b', tenant('b', [])],
      ['c', tenant('c', [anchor])],
    ])
    const index = createAnchorIndex({
      listTenants: async ({ after }) => {
        const ids = [...rows.keys()].sort().filter((id) => after === undefined || id > after)
        const page = ids.slice(0, 2)
        return { items: page.map((id) => rows.get(id)!), next: ids.length > 2 ? page[1]! : null }
      },
      tenant: async (id) => rows.get(id),
      log: silentLogger,
    })
    await index.load()
    expect(index.tenantsFor(device.issuer)).toEqual(['a', 'c'])
    expect(index.tenantsFor('CN=Someone else')).toEqual([])

    rows.set('a', tenant('a', []))
    rows.delete('c')
    rows.set('b', tenant('b', [anchor]))
    await index.refresh('a')
    await index.refresh('c')
    await index.refresh('b')
    expect(index.tenantsFor(device.issuer)).toEqual(['b'])
  })
})
