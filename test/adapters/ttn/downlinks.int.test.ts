// Downlink targets on Redis, as two instances of a deployment share them: one instance receives the
// device's webhook call, the other sends its command as the downlink. What Redis holds carries the
// API key only encrypted, and lapses after the target's ttl.
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { DownlinkRequest, DownlinkSender } from '../../../adapters/http/ttn/downlink-send.ts'
import { TARGET_TTL_MS, createDownlinkTargets } from '../../../adapters/http/ttn/downlinks.ts'
import type { CommandSink } from '../../../commands/outlet.ts'
import { silentLogger } from '../../../core/log.ts'
import { createSecrets } from '../../../core/registry/secrets.ts'
import type { RedisHarness } from '../../core/cluster/implementations.ts'
import { redisHarness } from '../../core/cluster/implementations.ts'

const API_KEY = 'NNSXS.REDISINTTESTKEY.PL41NT3XTN3V3R1NR3D1S'
const base = 'https://eu1.cloud.thethings.network/api/v3/as/applications/app1/webhooks/wh1/devices/d1/down'
const headers: Record<string, string> = {
  'x-downlink-push': `${base}/push`,
  'x-downlink-replace': `${base}/replace`,
  'x-downlink-apikey': API_KEY,
}

type Provider = (tenant: string, device: string) => Promise<CommandSink | undefined>

function outlet() {
  const providers: Provider[] = []
  const kicked: string[] = []
  return {
    providers,
    kicked,
    offline: (p: Provider) => (providers.push(p), () => {}),
    pending: (tenant: string, device: string) => void kicked.push(`${tenant}/${device}`),
  }
}

let harness: RedisHarness
let admin: Redis
beforeAll(() => {
  harness = redisHarness(inject('redisUrl'))
  admin = new Redis(inject('redisUrl'), { maxRetriesPerRequest: 1 })
})
afterAll(async () => {
  await harness.destroy()
  await admin.quit()
})

describe('downlink targets shared on Redis', () => {
  it('are stored by the instance the webhook reached and sent from another one', async () => {
    const registryKey = randomBytes(32)
    const [a, b] = [await harness.open(), await harness.open()]
    const outletA = outlet()
    const outletB = outlet()
    const sent: DownlinkRequest[] = []
    const sender: DownlinkSender = {
      send: (request) => (sent.push(request), Promise.resolve({ kind: 'delivered' })),
      close: () => {},
    }
    const onA = createDownlinkTargets(
      { commands: outletA, cluster: a, secrets: createSecrets(registryKey) },
      silentLogger,
    )
    createDownlinkTargets(
      { commands: outletB, cluster: b, secrets: createSecrets(registryKey), downlinkSender: sender },
      silentLogger,
    )
    expect(await outletB.providers[0]!('acme', 'd1')).toBeUndefined()

    const ids = { application: 'app1', device: 'd1' }
    expect(await onA.remember('acme', ids, (name) => headers[name], new Date())).toBe(true)
    expect(outletA.kicked).toEqual(['acme/d1'])

    const sink = (await outletB.providers[0]!('acme', 'd1'))!
    const result = await sink.deliver({
      id: 'cmd-redis-1',
      tenant: 'acme',
      device: 'd1',
      name: 'valve',
      payload: Buffer.from([5]),
      contentType: undefined,
      requestId: undefined,
      fport: 4,
      downlink: undefined,
      expiresAt: new Date(Date.now() + 60_000),
    })
    expect(result).toEqual({ kind: 'delivered' })
    expect(sent.map((r) => [r.url, r.headers['authorization']])).toEqual([
      [`${base}/push`, `Bearer ${API_KEY}`],
    ])

    const [key] = (await harness.keys()).filter((k) => k.includes('ttn-downlink:acme/d1'))
    expect(key).toBeDefined()
    const stored = (await admin.get(key!))!
    expect(stored).not.toContain(API_KEY)
    expect(stored).toContain(`${base}/push`)
    const ttl = await admin.pttl(key!)
    expect(ttl).toBeGreaterThan(TARGET_TTL_MS - 60_000)
    expect(ttl).toBeLessThanOrEqual(TARGET_TTL_MS)
  })
})
