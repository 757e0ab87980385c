// A tenant's TTN settings as the webhook reads them, the secret's hash (the same one the management
// API stores), and the downlink targets kept for the commands issue.
import { describe, expect, it } from 'vitest'
import {
  channelOfPort,
  generateWebhookSecret,
  readTtnSettings,
  webhookSecretHash,
} from '../../../adapters/http/ttn/config.ts'
import { createDownlinkTargets } from '../../../adapters/http/ttn/downlinks.ts'
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

describe('downlink targets', () => {
  const headers =
    (values: Record<string, string>) =>
    (name: string): string | undefined =>
      values[name]
  const good = {
    'x-downlink-push':
      'https://eu1.cloud.thethings.network/api/v3/as/applications/app1/webhooks/wh1/devices/d1/down/push',
    'x-downlink-replace':
      'https://eu1.cloud.thethings.network/api/v3/as/applications/app1/webhooks/wh1/devices/d1/down/replace',
    'x-downlink-apikey': 'NNSXS.ABCDEF.GHIJKL',
  }

  it('remembers the URLs and API key per device', () => {
    const targets = createDownlinkTargets()
    const at = new Date()
    expect(targets.remember('acme', 'd1', headers(good), at)).toBe(true)
    expect(targets.get('acme', 'd1')).toEqual({
      push: good['x-downlink-push'],
      replace: good['x-downlink-replace'],
      apiKey: good['x-downlink-apikey'],
      seenAt: at,
    })
    expect(targets.get('acme', 'd2')).toBeUndefined()
  })

  it('ignores missing or malformed headers', () => {
    const targets = createDownlinkTargets()
    expect(targets.remember('acme', 'd1', headers({ ...good, 'x-downlink-apikey': '' }), new Date())).toBe(
      false,
    )
    expect(
      targets.remember('acme', 'd1', headers({ ...good, 'x-downlink-push': 'ftp://x/y' }), new Date()),
    ).toBe(false)
    expect(
      targets.remember('acme', 'd1', headers({ ...good, 'x-downlink-replace': 'not a url' }), new Date()),
    ).toBe(false)
    expect(
      targets.remember('acme', 'd1', headers({ ...good, 'x-downlink-apikey': 'has space' }), new Date()),
    ).toBe(false)
    expect(targets.size).toBe(0)
  })

  it('drops the least recently seen device when full', () => {
    const targets = createDownlinkTargets({ maxEntries: 2 })
    targets.remember('acme', 'a', headers(good), new Date())
    targets.remember('acme', 'b', headers(good), new Date())
    targets.remember('acme', 'a', headers(good), new Date())
    targets.remember('acme', 'c', headers(good), new Date())
    expect(
      [targets.get('acme', 'a'), targets.get('acme', 'b'), targets.get('acme', 'c')].map(Boolean),
    ).toEqual([true, false, true])
  })
})
