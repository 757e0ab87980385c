// A tenant's TTN settings as the webhook reads them, and the secret's hash (the same one the
// management API stores). Downlink targets: downlinks.test.ts.
import { describe, expect, it } from 'vitest'
import {
  channelOfPort,
  generateWebhookSecret,
  readTtnSettings,
  webhookSecretHash,
} from '../../../adapters/http/ttn/config.ts'
import { ttnSecretHash } from '../../../api/routes/ttn-secret.ts'

const HASH = webhookSecretHash('tws_secret')

describe('readTtnSettings', () => {
  it('fills in the defaults: raw payloads, no auto-registration, no FPort mapping', () => {
    expect(readTtnSettings({ ttn: { webhookSecretSha256: HASH } })).toEqual({
      ok: true,
      settings: { webhookSecretSha256: HASH, payload: 'raw', autoRegister: false, fPortChannels: {} },
    })
  })

  it('takes every setting', () => {
    const read = readTtnSettings({
      other: 1,
      ttn: {
        webhookSecretSha256: HASH,
        payload: 'decoded',
        autoRegister: true,
        fPortChannels: { '2': 'climate/air' },
      },
    })
    expect(read).toMatchObject({ ok: true, settings: { payload: 'decoded', autoRegister: true } })
  })

  it('has no secret without TTN settings or with a malformed hash', () => {
    expect(readTtnSettings({})).toMatchObject({ ok: false, reason: 'no-secret' })
    expect(readTtnSettings({ ttn: 'yes' })).toMatchObject({ ok: false, reason: 'no-secret' })
    expect(readTtnSettings({ ttn: { webhookSecretSha256: HASH.toUpperCase() } })).toMatchObject({
      ok: false,
      reason: 'no-secret',
    })
  })

  it.each([
    [{ payload: 'base64' }, /payload/],
    [{ autoRegister: 'yes' }, /autoRegister/],
    [{ fPortChannels: { '256': 'a' } }, /FPort/],
    [{ fPortChannels: { x: 'a' } }, /FPort/],
    [{ fPortChannels: { '1': 'a b' } }, /channel/],
    [{ fPortChannels: { '1': 'command/x' } }, /channel/],
    [{ fPortChannels: [] }, /object/],
    [{ unknown: 1 }, /unknown is not a TTN setting/],
  ])('refuses %j but keeps the hash, so the caller who proves the secret learns why', (extra, detail) => {
    const read = readTtnSettings({ ttn: { webhookSecretSha256: HASH, ...extra } })
    expect(read).toMatchObject({ ok: false, reason: 'invalid', secretSha256: HASH })
    expect(!read.ok && read.detail).toMatch(detail)
  })
})

describe('webhook secrets', () => {
  it('are hashed exactly as the management API stores them', () => {
    const secret = generateWebhookSecret()
    expect(webhookSecretHash(secret)).toBe(ttnSecretHash(secret))
    expect(webhookSecretHash(secret)).toMatch(/^[0-9a-f]{64}$/)
  })

  it('are generated with 256 random bits', () => {
    const a = generateWebhookSecret()
    expect(a).toMatch(/^tws_[A-Za-z0-9_-]{43}$/)
    expect(generateWebhookSecret()).not.toBe(a)
  })

  it('map FPorts to channels', () => {
    expect(channelOfPort({ fPortChannels: { '3': 'x/y' } }, 3)).toBe('x/y')
    expect(channelOfPort({ fPortChannels: {} }, 3)).toBe('lorawan/3')
  })
})
