// What a device may ask about published files, whatever protocol carried it: fields are checked
// before the registry is read, a file is the device's only when published to it or to a folder, and
// a store that cannot make a URL is a 503 rather than an error.
import { describe, expect, it } from 'vitest'
import { answerFileRequest, type PublishedDeps } from '../../../core/blobs/published.ts'
import { TributaryError } from '../../../core/errors.ts'
import type { FilePublications } from '../../../core/registry/files.ts'
import { sampleFile } from './file-fixtures.ts'

const file = sampleFile

function deps(
  publications: FilePublications,
  url: PublishedDeps['links']['url'] = async () => ({
    url: 'https://files.example.com/x',
    method: 'GET',
    headers: {},
    expiresAt: new Date('2026-05-01T10:05:00Z'),
  }),
) {
  const listed: unknown[] = []
  const d: PublishedDeps = {
    files: {
      listPublished: async (_t, _d, options) => {
        listed.push(options)
        return { items: [{ file, folders: publications.folders }], next: null }
      },
    },
    lookups: { lookup: async (_t, id) => (id === file.id ? { file, publications } : undefined) },
    links: { url },
  }
  return { d, listed }
}

const ask = (
  d: PublishedDeps,
  kind: 'list' | 'download',
  fields: Record<string, unknown>,
  device = 'cam-1',
) => answerFileRequest(d, { tenant: 'acme', device, kind, fields, base: () => 'http://127.0.0.1:8088' })

describe('answerFileRequest', () => {
  it('refuses bad fields before it reads the registry', async () => {
    const { d, listed } = deps({ devices: [], folders: ['firmware'] })
    for (const fields of [
      { folder: '.hidden' },
      { folder: 7 },
      { limit: 0 },
      { limit: '101' },
      { limit: 1.5 },
      { after: 'x'.repeat(513) },
      { owner: 'me' },
    ]) {
      const answer = await ask(d, 'list', fields)
      expect(answer.ok ? 200 : answer.refusal.status, JSON.stringify(fields)).toBe(400)
    }
    for (const fields of [{}, { fileId: 'short' }, { fileId: file.id, expiresIn: 'soon' }]) {
      const answer = await ask(d, 'download', fields)
      expect(answer.ok ? 200 : answer.refusal.status, JSON.stringify(fields)).toBe(400)
    }
    expect(listed).toEqual([])
  })

  it('lists with the limit given (as a number or a query string) or 100', async () => {
    const { d, listed } = deps({ devices: [], folders: ['firmware'] })
    const answer = await ask(d, 'list', { limit: '5', folder: 'firmware' })
    expect(answer.ok && answer.body['items']).toEqual([
      expect.objectContaining({ id: file.id, folders: ['firmware'], uploadedAt: '2026-05-01T10:00:01.000Z' }),
    ])
    await ask(d, 'list', {})
    expect(listed).toEqual([
      { folder: 'firmware', after: undefined, limit: 5 },
      { folder: undefined, after: undefined, limit: 100 },
    ])
  })

  it('hands a URL to the device a file is published to, or to any device when it is in a folder', async () => {
    const own = deps({ devices: ['cam-1'], folders: [] }).d
    expect((await ask(own, 'download', { fileId: file.id })).ok).toBe(true)
    const other = await ask(own, 'download', { fileId: file.id }, 'cam-2')
    expect(other).toEqual({ ok: false, refusal: { status: 404, detail: 'no such file' } })
    expect((await ask(own, 'download', { fileId: 'no-such-file' })).ok).toBe(false)
    const folder = deps({ devices: [], folders: ['firmware'] }).d
    const answer = await ask(folder, 'download', { fileId: file.id, expiresIn: 60 }, 'cam-2')
    expect(answer.ok && answer.body).toMatchObject({ url: 'https://files.example.com/x', method: 'GET' })
  })

  it('answers 503 when no URL can be made, and 400 for an expiry out of bounds', async () => {
    const fail = (code: 'BLOB_UNAVAILABLE' | 'REQUEST_INVALID') => async (): Promise<never> => {
      throw new TributaryError(code, 'no')
    }
    const published = { devices: ['cam-1'], folders: [] }
    const unavailable = await ask(deps(published, fail('BLOB_UNAVAILABLE')).d, 'download', {
      fileId: file.id,
    })
    expect(unavailable.ok ? 200 : unavailable.refusal.status).toBe(503)
    const invalid = await ask(deps(published, fail('REQUEST_INVALID')).d, 'download', { fileId: file.id })
    expect(invalid.ok ? 200 : invalid.refusal.status).toBe(400)
  })

  it("counts a well-formed download against the device's rate, and answers 429 past it", async () => {
    const counted: string[] = []
    const { d } = deps({ devices: ['cam-1'], folders: [] })
    const limited: PublishedDeps = {
      ...d,
      rate: async (_tenant, device) => {
        counted.push(device)
        if (counted.length > 1)
          throw new TributaryError('RATE_LIMITED', 'slow down', { details: { retryAfterMs: 1500 } })
      },
    }
    expect((await ask(limited, 'download', { fileId: file.id })).ok).toBe(true)
    expect(await ask(limited, 'download', { fileId: 'short' })).toMatchObject({ ok: false })
    const refused = await ask(limited, 'download', { fileId: file.id })
    expect(refused).toEqual({ ok: false, refusal: { status: 429, detail: 'slow down', retryAfterMs: 1500 } })
    expect(counted).toEqual(['cam-1', 'cam-1'])
  })
})
