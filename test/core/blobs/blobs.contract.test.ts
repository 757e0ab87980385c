// The BlobStore contract: the filesystem store and the S3 store (on S3Proxy) must pass all of it.
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { text } from 'node:stream/consumers'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BlobStore } from '../../../core/blobs/blobs.ts'
import { blobKey, devicePrefix, tenantPrefix } from '../../../core/blobs/keys.ts'
import { isTributaryError } from '../../../core/errors.ts'
import { openFilesystemStore, openS3Store } from './implementations.ts'

const implementations: Array<{ name: string; open: () => Promise<BlobStore> }> = [
  { name: 'filesystem', open: async () => (await openFilesystemStore()).store },
  { name: 's3', open: openS3Store },
]

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex')
const id = (): string => randomBytes(12).toString('base64url')

/** A body in several chunks, as a socket delivers it. */
function body(data: Buffer, chunk = 1000): Readable {
  const chunks: Buffer[] = []
  for (let at = 0; at < data.length; at += chunk) chunks.push(data.subarray(at, at + chunk))
  return Readable.from(chunks)
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (!isTributaryError(err)) throw new Error(`expected a TributaryError, got ${String(err)}`)
  return err.code
}

describe.each(implementations)('BlobStore contract: $name', ({ name, open }) => {
  let store: BlobStore
  const tenant = 'acme'

  beforeAll(async () => {
    store = await open()
  })

  afterAll(async () => {
    await store.close()
  })

  it('stores a streamed body and gives it back with its size and SHA-256', async () => {
    const data = randomBytes(10_000)
    const key = blobKey(tenant, 'dev-1', id())
    const put = await store.put({
      key,
      body: body(data),
      size: data.length,
      contentType: 'application/octet-stream',
    })
    expect(put).toMatchObject({ key, size: data.length, sha256: sha256(data) })

    expect(await store.head(key)).toMatchObject({ key, size: data.length })
    const got = await store.get(key)
    expect(got?.info.size).toBe(data.length)
    const chunks: Buffer[] = []
    for await (const chunk of got!.body) chunks.push(chunk as Buffer)
    expect(Buffer.concat(chunks).equals(data)).toBe(true)
  })

  it('accepts a body that matches its declared SHA-256, and a zero-length body', async () => {
    const data = Buffer.from('declared and matching')
    const key = blobKey(tenant, 'dev-1', id())
    await store.put({ key, body: body(data), size: data.length, sha256: sha256(data) })
    expect(await text((await store.get(key))!.body)).toBe('declared and matching')

    const empty = blobKey(tenant, 'dev-1', id())
    const put = await store.put({ key: empty, body: Readable.from([]), size: 0 })
    expect(put.sha256).toBe(sha256(Buffer.alloc(0)))
    expect((await store.head(empty))?.size).toBe(0)
  })

  it('streams a body larger than any buffer (8 MiB in 64 KiB chunks)', async () => {
    const chunk = randomBytes(64 * 1024)
    const count = 128
    const hash = createHash('sha256')
    for (let i = 0; i < count; i++) hash.update(chunk)
    const key = blobKey(tenant, 'dev-big', id())
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < count; i++) yield chunk
      })(),
    )
    const put = await store.put({ key, body: source, size: chunk.length * count, sha256: hash.digest('hex') })
    expect(put.size).toBe(chunk.length * count)
    expect((await store.head(key))?.size).toBe(chunk.length * count)
    await store.delete(key)
  })

  it('refuses a body longer or shorter than declared, or with another SHA-256, and keeps nothing', async () => {
    const data = randomBytes(5_000)
    const device = `dev-refused-${name}`
    const longer = blobKey(tenant, device, id())
    expect(await refusal(store.put({ key: longer, body: body(data), size: data.length - 1 }))).toBe(
      'BLOB_INTEGRITY',
    )
    const shorter = blobKey(tenant, device, id())
    expect(await refusal(store.put({ key: shorter, body: body(data), size: data.length + 1 }))).toBe(
      'BLOB_INTEGRITY',
    )
    const mismatch = blobKey(tenant, device, id())
    const wrong = sha256(Buffer.from('something else'))
    expect(
      await refusal(store.put({ key: mismatch, body: body(data), size: data.length, sha256: wrong })),
    ).toBe('BLOB_INTEGRITY')
    for (const key of [longer, shorter, mismatch]) expect(await store.head(key)).toBeUndefined()
    expect((await store.list(devicePrefix(tenant, device))).items).toEqual([])
  })

  it('keeps the previous object when a replacing put is refused', async () => {
    const key = blobKey(tenant, 'dev-1', id())
    await store.put({ key, body: body(Buffer.from('first')), size: 5 })
    const bad = Buffer.from('second!')
    expect(
      await refusal(store.put({ key, body: body(bad), size: bad.length, sha256: sha256(Buffer.from('x')) })),
    ).toBe('BLOB_INTEGRITY')
    expect(await text((await store.get(key))!.body)).toBe('first')
  })

  it('keeps nothing of an upload whose source fails midway', async () => {
    const key = blobKey(tenant, 'dev-1', id())
    const source = new Readable({ read() {} })
    source.push(randomBytes(1000))
    const put = store.put({ key, body: source, size: 5000 })
    setImmediate(() => source.destroy(new Error('connection reset')))
    await expect(put).rejects.toThrow()
    expect(await store.head(key)).toBeUndefined()
  })

  it('answers undefined for a missing key and deletes idempotently', async () => {
    const key = blobKey(tenant, 'dev-1', id())
    expect(await store.head(key)).toBeUndefined()
    expect(await store.get(key)).toBeUndefined()
    await store.delete(key)
    await store.put({ key, body: body(Buffer.from('gone soon')), size: 9 })
    await store.delete(key)
    expect(await store.head(key)).toBeUndefined()
    await store.delete(key)
  })

  it('lists by device and tenant prefix in key order, page by page, and nothing of other tenants', async () => {
    const listed = `list-${name}`
    const other = `other-${name}`
    const ids = Array.from({ length: 5 }, id).sort()
    for (const device of ['a', 'b']) {
      for (const objectId of ids) {
        await store.put({
          key: blobKey(listed, device, objectId),
          body: body(Buffer.from(objectId)),
          size: objectId.length,
        })
      }
    }
    await store.put({ key: blobKey(other, 'a', ids[0]!), body: body(Buffer.from('x')), size: 1 })

    const first = await store.list(devicePrefix(listed, 'a'), { limit: 3 })
    expect(first.items.map((item) => item.key)).toEqual(ids.slice(0, 3).map((i) => blobKey(listed, 'a', i)))
    expect(first.next).toBeDefined()
    const second = await store.list(devicePrefix(listed, 'a'), { limit: 3, after: first.next })
    expect(second.items.map((item) => item.key)).toEqual(ids.slice(3).map((i) => blobKey(listed, 'a', i)))
    expect(second.next).toBeUndefined()

    const all = await store.list(tenantPrefix(listed), { limit: 100 })
    expect(all.items).toHaveLength(10)
    expect(all.items.every((item) => item.key.startsWith(tenantPrefix(listed)))).toBe(true)
    expect(all.items.map((item) => item.key)).toEqual([...all.items.map((item) => item.key)].sort())
  })

  it('refuses keys and prefixes that are not its own', async () => {
    for (const key of [
      '../etc/passwd',
      'acme/../x',
      'acme/dev/..',
      'acme//x',
      '/acme/dev/x',
      'acme/dev/x/y',
      '',
    ]) {
      expect(await refusal(store.head(key))).toBe('BLOB_INVALID_KEY')
      expect(await refusal(store.put({ key, body: body(Buffer.from('x')), size: 1 }))).toBe(
        'BLOB_INVALID_KEY',
      )
    }
    for (const prefix of ['', 'acme', '../', 'acme/../', 'acme/dev/x/']) {
      expect(await refusal(store.list(prefix))).toBe('BLOB_INVALID_KEY')
    }
  })

  it('names where an object lives as an absolute URI', () => {
    const objectId = id()
    const location = new URL(store.location(blobKey(tenant, 'dev-1', objectId)))
    expect(location.protocol).toBe(name === 's3' ? 's3:' : 'file:')
    expect(location.pathname.endsWith(`/acme/dev-1/${objectId}`)).toBe(true)
  })

  it('reports itself healthy', async () => {
    expect(await store.health()).toEqual({ ok: true })
  })
})
