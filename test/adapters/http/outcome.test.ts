// Outcomes and refusals as HTTP responses: status, problem body, Retry-After and WWW-Authenticate.
import { describe, expect, it } from 'vitest'
import type { Outcome } from '../../../adapters/adapter.ts'
import {
  DEVICE_CHALLENGE,
  authRefusal,
  outcomeResponse,
  outcomeStatus,
  problemResponse,
  retryAfterSeconds,
} from '../../../adapters/http/outcome.ts'

const instance = '/v1/temp'

describe('outcomeResponse', () => {
  it('answers 202 with no body once the event is durable', async () => {
    const response = outcomeResponse({ kind: 'accepted' }, { instance })
    expect(response.status).toBe(202)
    expect(await response.text()).toBe('')
  })

  it.each([
    ['invalid', 400, 'REQUEST_INVALID'],
    ['unauthenticated', 401, 'AUTH_REQUIRED'],
    ['forbidden', 403, 'AUTH_FORBIDDEN'],
    ['too-large', 413, 'REQUEST_TOO_LARGE'],
    ['rate-limited', 429, 'RATE_LIMITED'],
  ] as const)('maps a %s refusal to %i with a problem document', async (reason, status, code) => {
    const outcome: Outcome = { kind: 'rejected', reason, detail: 'why', retryAfterMs: 1500 }
    const response = outcomeResponse(outcome, { instance })
    expect(response.status).toBe(status)
    expect(outcomeStatus(outcome)).toBe(status)
    expect(response.headers.get('content-type')).toBe('application/problem+json')
    expect(await response.json()).toEqual({
      type: `https://tributary.dev/problems/${code.toLowerCase().replaceAll('_', '-')}`,
      title: expect.any(String) as string,
      status,
      detail: 'why',
      instance,
      code,
    })
    expect(response.headers.get('retry-after')).toBe(status === 429 ? '2' : null)
  })

  it('answers an unavailable bus with 503, Retry-After and no internals', async () => {
    const outcome: Outcome = { kind: 'unavailable', detail: 'broker 10.0.0.7:9092 refused the connection' }
    const response = outcomeResponse(outcome, { instance })
    expect(response.status).toBe(503)
    expect(outcomeStatus(outcome)).toBe(503)
    expect(response.headers.get('retry-after')).toBe('1')
    const body = (await response.json()) as { detail: string; code: string }
    expect(body.code).toBe('BUS_UNAVAILABLE')
    expect(body.detail).not.toContain('10.0.0.7')
  })

  it('names what is unavailable in the problem code, and says when to retry', async () => {
    const outcome: Outcome = {
      kind: 'unavailable',
      detail: 'the registry database is unavailable: connect ECONNREFUSED 10.0.0.8:5432',
      code: 'REGISTRY_UNAVAILABLE',
      retryAfterMs: 4_500,
    }
    const response = outcomeResponse(outcome, { instance })
    expect(response.status).toBe(503)
    expect(response.headers.get('retry-after')).toBe('5')
    const body = (await response.json()) as { detail: string; code: string; type: string }
    expect(body).toMatchObject({
      code: 'REGISTRY_UNAVAILABLE',
      type: 'https://tributary.dev/problems/registry-unavailable',
    })
    expect(body.detail).not.toContain('10.0.0.8')
  })
})

describe('problemResponse', () => {
  it('challenges a 401 with both device schemes, or the one given', () => {
    expect(problemResponse('unauthenticated', 'x', { instance }).headers.get('www-authenticate')).toBe(
      DEVICE_CHALLENGE,
    )
    expect(DEVICE_CHALLENGE).toMatch(/^Basic realm="tributary", Bearer realm="tributary"$/)
    expect(
      problemResponse('unauthenticated', 'x', { instance, challenge: 'Other realm="r"' }).headers.get(
        'www-authenticate',
      ),
    ).toBe('Other realm="r"')
    expect(problemResponse('forbidden', 'x', { instance }).headers.get('www-authenticate')).toBeNull()
  })

  it('sends Allow with a 405 and 415 for an unsupported media type', () => {
    const notAllowed = problemResponse('method-not-allowed', 'use POST', { instance, allow: 'POST' })
    expect([notAllowed.status, notAllowed.headers.get('allow')]).toEqual([405, 'POST'])
    expect(problemResponse('unsupported-media-type', 'x', { instance }).status).toBe(415)
  })
})

describe('retryAfterSeconds', () => {
  it('rounds up to whole seconds, at least one', () => {
    expect(retryAfterSeconds(undefined)).toBe(1)
    expect(retryAfterSeconds(1)).toBe(1)
    expect(retryAfterSeconds(1001)).toBe(2)
    expect(retryAfterSeconds(0)).toBe(1)
  })
})

describe('authRefusal', () => {
  it('is 401 until the credentials prove a device, 403 after', () => {
    expect(authRefusal('malformed').kind).toBe('unauthenticated')
    expect(authRefusal('unknown').kind).toBe('unauthenticated')
    expect(authRefusal('bad-secret').kind).toBe('unauthenticated')
    expect(authRefusal('expired').kind).toBe('unauthenticated')
    expect(authRefusal('disabled').kind).toBe('forbidden')
    expect(authRefusal('method-not-allowed').kind).toBe('forbidden')
  })

  it('says the same for an unknown device and a wrong password', () => {
    expect(authRefusal('unknown').detail).toBe(authRefusal('bad-secret').detail)
  })
})
