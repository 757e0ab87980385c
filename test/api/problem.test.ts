// Errors that reach the app's error handler: unexpected ones become a bare 500 that leaks nothing
// (and are logged), server-side TributaryErrors a generic retryable answer.
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { createApiApp } from '../../api/app.ts'
import type { BearerAuthenticator } from '../../core/auth/bearer.ts'
import { TributaryError } from '../../core/errors.ts'
import { createLogger } from '../../core/log.ts'
import { noLookups, stubRegistry } from './stubs.ts'

const admin: BearerAuthenticator = {
  authenticate: (token) =>
    Promise.resolve(
      token === 'let-me-in'
        ? {
            kind: 'authenticated',
            principal: { kind: 'admin', subject: 'admin-token', tenant: null, roles: ['admin'] },
          }
        : { kind: 'rejected', reason: 'no' },
    ),
}

function appWith(getTenant: () => Promise<never>) {
  const lines: string[] = []
  const log = createLogger({
    level: 'debug',
    destination: new Writable({
      write: (chunk: Buffer, _e, done) => void (lines.push(chunk.toString()), done()),
    }),
  })
  const { app } = createApiApp({
    registry: stubRegistry({ getTenant }),
    auth: admin,
    lookups: noLookups,
    maxBodyBytes: 1024,
    log,
  })
  const get = () => app.request('/api/v1/tenants/acme', { headers: { authorization: 'Bearer let-me-in' } })
  return { get, lines }
}

describe('problem responses for failures', () => {
  it('answers an unexpected error with a 500 that leaks nothing, and logs it', async () => {
    const { get, lines } = appWith(() =>
      Promise.reject(new Error('connect ECONNREFUSED 10.1.2.3:5432 password=hunter2')),
    )
    const reply = await get()
    expect(reply.status).toBe(500)
    expect(reply.headers.get('content-type')).toBe('application/problem+json')
    const text = await reply.text()
    expect(JSON.parse(text)).toEqual({
      type: 'https://tributary.dev/problems/internal',
      title: 'Internal error',
      status: 500,
      detail: 'an unexpected error occurred',
      instance: '/api/v1/tenants/acme',
      code: 'INTERNAL',
    })
    expect(text).not.toMatch(/hunter2|10\.1\.2\.3|ECONNREFUSED|at /)
    const logged = lines
      .map((l) => JSON.parse(l) as { msg: string; err?: { message: string } })
      .find((l) => l.msg === 'request failed')
    expect(logged?.err?.message).toContain('ECONNREFUSED')
    expect(lines.join('')).not.toContain('let-me-in')
  })

  it('answers an unavailable registry with 503, Retry-After and a generic detail', async () => {
    const { get } = appWith(() =>
      Promise.reject(
        new TributaryError('REGISTRY_UNAVAILABLE', 'postgres://tributary:s3cret@db:5432 refused'),
      ),
    )
    const reply = await get()
    expect(reply.status).toBe(503)
    expect(reply.headers.get('retry-after')).toBe('1')
    const body = (await reply.json()) as { code: string; detail: string }
    expect(body.code).toBe('REGISTRY_UNAVAILABLE')
    expect(body.detail).not.toContain('s3cret')
  })
})
