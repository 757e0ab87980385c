// Signed download URLs of the filesystem store: each one opens exactly one object for GET until
// its expiry; a URL that was altered in any part (key, expiry, name, signature), used for another
// method, signed under another registry key or past its expiry is refused. Stores that presign
// (S3) hand out their own URL.
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { PresignedRequest } from '../../../core/blobs/blobs.ts'
import { createDownloadLinks, fileContentRef } from '../../../core/blobs/downloads.ts'
import { blobKey } from '../../../core/blobs/keys.ts'

const KEY = blobKey('acme', 'cam-1', 'file-0001')
const OTHER_TENANT_KEY = blobKey('evil', 'cam-1', 'file-0001')
const BASE = 'http://10.0.0.5:8088'

function setup(at = new Date('2026-03-01T12:00:00.000Z')) {
  const clock = { now: at }
  const registryKey = randomBytes(32)
  const links = createDownloadLinks({
    blobs: { presign: undefined },
    registryKey,
    maxTtlMs: 600_000,
    now: () => clock.now,
  })
  return { clock, registryKey, links }
}

const parts = (signed: PresignedRequest) => {
  const url = new URL(signed.url)
  return { key: url.pathname.slice('/v1/files/download/'.length), query: url.searchParams, url }
}

describe('signed download URLs', () => {
  it('opens the object it was made for, with its name, until it expires', async () => {
    const { clock, links } = setup()
    const signed = await links.url({ key: KEY, filename: 'fw 1.bin', expiresInS: 60, base: () => BASE })
    expect(signed.method).toBe('GET')
    expect(signed.url.startsWith(`${BASE}/v1/files/download/acme/cam-1/file-0001?`)).toBe(true)
    expect(signed.expiresAt.toISOString()).toBe('2026-03-01T12:01:00.000Z')
    const { key, query } = parts(signed)
    expect(links.check('GET', key, query)).toEqual({ ok: true, key: KEY, filename: 'fw 1.bin' })

    clock.now = new Date('2026-03-01T12:00:59.999Z')
    expect(links.check('GET', key, query).ok).toBe(true)
    clock.now = new Date('2026-03-01T12:01:00.000Z')
    expect(links.check('GET', key, query)).toMatchObject({ ok: false, reason: 'expired' })
  })

  it('refuses a URL whose key, expiry, name or signature was changed, or another method', async () => {
    const { links } = setup()
    const { key, query } = parts(await links.url({ key: KEY, filename: 'a.bin', base: () => BASE }))
    const altered = (name: string, value: string) => {
      const copy = new URLSearchParams(query)
      copy.set(name, value)
      return copy
    }
    const signature = query.get('signature')!
    const flipped = `${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`
    for (const [label, method, path, params] of [
      ["another tenant's key", 'GET', OTHER_TENANT_KEY, query],
      ['another file', 'GET', blobKey('acme', 'cam-1', 'file-0002'), query],
      ['a later expiry', 'GET', key, altered('expires', String(Number(query.get('expires')) + 3600))],
      ['another name', 'GET', key, altered('filename', 'b.bin')],
      ['a changed signature', 'GET', key, altered('signature', flipped)],
      ['PUT', 'PUT', key, query],
      ['DELETE', 'DELETE', key, query],
    ] as const) {
      expect(links.check(method, path, params), label).toMatchObject({ ok: false, reason: 'forbidden' })
    }
    const without = new URLSearchParams(query)
    without.delete('signature')
    expect(links.check('GET', key, without)).toMatchObject({ ok: false, reason: 'invalid' })
    expect(links.check('GET', '../../etc/passwd', query)).toMatchObject({ ok: false, reason: 'forbidden' })
    // The expiry check comes after the signature: a forged expiry is refused as forged.
    expect(links.check('GET', key, altered('expires', '1'))).toMatchObject({ reason: 'forbidden' })
  })

  it('refuses a URL signed under another registry key', async () => {
    const a = setup()
    const b = setup()
    const { key, query } = parts(await a.links.url({ key: KEY, base: () => BASE }))
    expect(a.links.check('GET', key, query).ok).toBe(true)
    expect(b.links.check('GET', key, query)).toMatchObject({ ok: false, reason: 'forbidden' })
  })

  it('bounds the life of a URL and needs the listener address', async () => {
    const { links } = setup()
    expect(links.maxTtlS).toBe(600)
    const signed = await links.url({ key: KEY, base: () => BASE })
    expect(signed.expiresAt.toISOString()).toBe('2026-03-01T12:10:00.000Z')
    for (const expiresInS of [0, 601, 1.5]) {
      await expect(links.url({ key: KEY, expiresInS, base: () => BASE })).rejects.toMatchObject({
        code: 'REQUEST_INVALID',
      })
    }
    await expect(links.url({ key: KEY, base: () => undefined })).rejects.toMatchObject({
      code: 'BLOB_UNAVAILABLE',
    })
    await expect(links.url({ key: 'acme/../x', base: () => BASE })).rejects.toMatchObject({
      code: 'BLOB_INVALID_KEY',
    })
  })

  it("hands out the store's own presigned GET where it can sign", async () => {
    const asked: Array<{ key: string; expiresInS: number; filename?: string | undefined }> = []
    const links = createDownloadLinks({
      blobs: {
        presign: {
          put: () => Promise.reject(new Error('not used')),
          get: async (key, options) => {
            asked.push({ key, ...options })
            return {
              url: 'https://bucket.example/x?X-Amz-Signature=s',
              method: 'GET',
              headers: {},
              expiresAt: new Date(0),
            }
          },
        },
      },
      registryKey: randomBytes(32),
      maxTtlMs: 600_000,
    })
    const signed = await links.url({ key: KEY, filename: 'a.bin', expiresInS: 30, base: () => undefined })
    expect(signed.url).toBe('https://bucket.example/x?X-Amz-Signature=s')
    expect(asked).toEqual([{ key: KEY, expiresInS: 30, filename: 'a.bin' }])
  })

  it('names the content in the management API as the claim check', () => {
    expect(fileContentRef('acme', 'file-0001')).toBe('/api/v1/tenants/acme/files/file-0001/content')
  })
})
