// Standard Webhooks signing checked by the reference library's verify().
import { randomBytes } from 'node:crypto'
import { Webhook } from 'standardwebhooks'
import { describe, expect, it } from 'vitest'
import { secretKey, sign } from '../../../consumers/webhook/signing.ts'
import { SECRET } from './fakes.ts'

describe('webhook signing', () => {
  const body = Buffer.from('{"temp":21.5,"note":"ünïcode"}')

  it('produces headers the standardwebhooks library verifies', () => {
    const headers = sign(secretKey(SECRET), 'evt-1', Date.now(), body)
    const payload = new Webhook(SECRET).verify(body.toString(), { ...headers })
    expect(payload).toEqual({ temp: 21.5, note: 'ünïcode' })
    expect(headers['webhook-id']).toBe('evt-1')
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/)
  })

  it('sends the timestamp in whole seconds', () => {
    const headers = sign(secretKey(SECRET), 'evt-1', 1_700_000_000_999, body)
    expect(headers['webhook-timestamp']).toBe('1700000000')
  })

  it('fails verification under another secret or for another body', () => {
    const headers = sign(secretKey(SECRET), 'evt-1', Date.now(), body)
    const other = `whsec_${randomBytes(32).toString('base64')}`
    expect(() => new Webhook(other).verify(body.toString(), { ...headers })).toThrow()
    expect(() => new Webhook(SECRET).verify('{"temp":99}', { ...headers })).toThrow()
  })

  it('refuses secrets that are not 24-64 bytes of base64', () => {
    expect(() => secretKey('whsec_c2hvcnQ=')).toThrow(RangeError)
    expect(() => secretKey('whsec_not base64!')).toThrow(RangeError)
    expect(() => secretKey(`whsec_${randomBytes(65).toString('base64')}`)).toThrow(RangeError)
    expect(secretKey(`whsec_${Buffer.alloc(24, 1).toString('base64')}`)).toEqual(Buffer.alloc(24, 1))
  })
})
