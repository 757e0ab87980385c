// Downlink targets shared through the cluster state: kept per device with the API key encrypted,
// readable by any instance with the same registry key, refused when the headers fail the checks,
// and offered to the dispatcher as an offline sink that sends through the downlink sender. The
// command outlet and the HTTP sender are doubles at their ports; the cluster state and the
// secrets are the real in-process ones.
import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { DownlinkRequest, DownlinkSender } from '../../../adapters/http/ttn/downlink-send.ts'
import type { DownlinkTargets } from '../../../adapters/http/ttn/downlinks.ts'
import { TARGET_TTL_MS, createDownlinkTargets, targetKey } from '../../../adapters/http/ttn/downlinks.ts'
import type { CommandSink, DeliveryResult, DeviceCommand } from '../../../commands/outlet.ts'
import type { ClusterState } from '../../../core/cluster/cluster.ts'
import { createMemoryCluster } from '../../../core/cluster/memory.ts'
import { createLogger, silentLogger } from '../../../core/log.ts'
import { createSecrets } from '../../../core/registry/secrets.ts'

const API_KEY = 'NNSXS.UNITTESTKEY4TRIBUTARY.N3V3RL0GG3D0RST0R3DPL41N'
const ids = { application: 'app1', device: 'd1' }
const base = 'https://eu1.cloud.thethings.network/api/v3/as/applications/app1/webhooks/wh1/devices'
const good: Record<string, string> = {
  'x-downlink-push': `${base}/d1/down/push`,
  'x-downlink-replace': `${base}/d1/down/replace`,
  'x-downlink-apikey': API_KEY,
}
const headers =
  (values: Record<string, string | undefined>) =>
  (name: string): string | undefined =>
    values[name]

type Provider = (tenant: string, device: string) => Promise<CommandSink | undefined>

function fakeOutlet() {
  const providers = new Set<Provider>()
  /** `<tenant>/<device>` of every pending() call. */
  const kicked: string[] = []
  return {
    providers,
    kicked,
    offline(provider: Provider) {
      providers.add(provider)
      return () => void providers.delete(provider)
    },
    pending(tenant: string, device: string) {
      kicked.push(`${tenant}/${device}`)
    },
    /** What the one provider offers for a device. */
    async sink(tenant: string, device: string) {
      const [provider] = [...providers]
      return provider?.(tenant, device)
    },
  }
}

function fakeSender(results: DeliveryResult[] = []) {
  const sent: DownlinkRequest[] = []
  let closed = false
  const sender: DownlinkSender = {
    send(request) {
      sent.push(request)
      return Promise.resolve(results.shift() ?? { kind: 'delivered' })
    },
    close() {
      closed = true
    },
  }
  return { sender, sent, closed: () => closed }
}

const command = (fields: Partial<DeviceCommand> = {}): DeviceCommand => ({
  id: '019ad1f0-7c2e-7b1a-9c4d-2f6e8a0b1c3d',
  tenant: 'acme',
  device: 'd1',
  name: 'valve',
  payload: Buffer.from([1, 2]),
  contentType: undefined,
  requestId: undefined,
  fport: 10,
  downlink: undefined,
  expiresAt: new Date(Date.now() + 60_000),
  ...fields,
})

let cluster: ClusterState
let lines: string[]
const key = randomBytes(32)
const secrets = createSecrets(key, { scryptLogN: 10 })
const log = () =>
  createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString())
        done()
      },
    }),
  })

beforeEach(async () => {
  lines = []
  cluster = createMemoryCluster({ log: silentLogger })
  await cluster.start()
})
afterEach(async () => {
  await cluster.stop()
})

function targets(outlet = fakeOutlet(), sender = fakeSender(), allowPrivate = false): DownlinkTargets {
  return createDownlinkTargets(
    {
      commands: outlet,
      cluster,
      secrets,
      allowPrivateDownlinks: allowPrivate,
      downlinkSender: sender.sender,
    },
    log(),
  )
}

describe('downlink targets in the cluster state', () => {
  it('keeps the URLs and the key per device, encrypted, and tells the outlet commands may go', async () => {
    const outlet = fakeOutlet()
    const t = targets(outlet)
    const at = new Date('2026-11-30T01:00:00.000Z')
    expect(await t.remember('acme', ids, headers(good), at)).toBe(true)
    expect(outlet.kicked).toEqual(['acme/d1'])
    expect(await t.get('acme', 'd1')).toEqual({
      push: good['x-downlink-push'],
      replace: good['x-downlink-replace'],
      apiKey: API_KEY,
      seenAt: at,
    })
    expect(await t.get('acme', 'd2')).toBeUndefined()
    const stored = await cluster.getValue(targetKey('acme', 'd1'))
    expect(stored).toBeDefined()
    expect(stored).not.toContain(API_KEY)
    expect(stored).not.toContain(Buffer.from(API_KEY).toString('base64'))
    expect(TARGET_TTL_MS).toBeGreaterThanOrEqual(7 * 86_400_000)
  })

  it('is read by another instance with the same registry key, not with another one', async () => {
    await targets().remember('acme', ids, headers(good), new Date())
    const other = createDownlinkTargets(
      { commands: fakeOutlet(), cluster, secrets: createSecrets(key, { scryptLogN: 10 }) },
      silentLogger,
    )
    expect((await other.get('acme', 'd1'))?.apiKey).toBe(API_KEY)
    const stranger = createDownlinkTargets(
      { commands: fakeOutlet(), cluster, secrets: createSecrets(randomBytes(32), { scryptLogN: 10 }) },
      log(),
    )
    expect(await stranger.get('acme', 'd1')).toBeUndefined()
    expect(lines.some((l) => l.includes('TTN downlink target unreadable'))).toBe(true)
  })

  it('does not decrypt a value copied onto another device', async () => {
    await targets().remember('acme', ids, headers(good), new Date())
    const value = (await cluster.getValue(targetKey('acme', 'd1')))!
    await cluster.setValue(targetKey('acme', 'd9'), value, 60_000)
    expect(await targets().get('acme', 'd9')).toBeUndefined()
  })

  it('refuses headers that fail the checks, keeps nothing and tells nobody', async () => {
    const outlet = fakeOutlet()
    const t = targets(outlet)
    const bad: Array<Record<string, string | undefined>> = [
      { ...good, 'x-downlink-apikey': undefined },
      { ...good, 'x-downlink-apikey': 'has space' },
      { ...good, 'x-downlink-apikey': 'k'.repeat(1025) },
      {
        ...good,
        'x-downlink-push': 'https://10.0.0.1/api/v3/as/applications/app1/webhooks/wh1/devices/d1/down/push',
      },
      { ...good, 'x-downlink-push': `${base}/d2/down/push` },
      { ...good, 'x-downlink-replace': undefined },
    ]
    for (const values of bad) expect(await t.remember('acme', ids, headers(values), new Date())).toBe(false)
    expect(await cluster.getValue(targetKey('acme', 'd1'))).toBeUndefined()
    expect(outlet.kicked).toEqual([])
    expect(lines.filter((l) => l.includes('TTN downlink headers refused'))).toHaveLength(bad.length)
    // A webhook without a downlink key sends none of the headers: nothing to say about it.
    expect(await t.remember('acme', ids, headers({}), new Date())).toBe(false)
    expect(lines.filter((l) => l.includes('TTN downlink headers refused'))).toHaveLength(bad.length)
  })

  it('keeps none and offers no sink without the command outlet or the secrets', async () => {
    const none = createDownlinkTargets({ cluster }, silentLogger)
    expect(await none.remember('acme', ids, headers(good), new Date())).toBe(false)
    expect(await cluster.getValue(targetKey('acme', 'd1'))).toBeUndefined()
    const outlet = fakeOutlet()
    createDownlinkTargets({ cluster, commands: outlet }, silentLogger)
    expect(outlet.providers.size).toBe(0)
  })
})

describe('the offline sink', () => {
  it('sends a command as a downlink to the push URL with the key, and replace when asked', async () => {
    const outlet = fakeOutlet()
    const sender = fakeSender([{ kind: 'delivered' }, { kind: 'failed', reason: 'ttn-403' }])
    const t = targets(outlet, sender)
    expect(await outlet.sink('acme', 'd1')).toBeUndefined()
    await t.remember('acme', ids, headers(good), new Date())
    const sink = (await outlet.sink('acme', 'd1'))!
    expect(sink.protocol).toBe('ttn')
    expect(await sink.deliver(command())).toEqual({ kind: 'delivered' })
    expect(await sink.deliver(command({ downlink: 'replace' }))).toEqual({
      kind: 'failed',
      reason: 'ttn-403',
    })
    expect(sender.sent.map((r) => r.url)).toEqual([good['x-downlink-push'], good['x-downlink-replace']])
    expect(sender.sent[0]!.headers['authorization']).toBe(`Bearer ${API_KEY}`)
    expect(JSON.parse(sender.sent[0]!.body.toString())).toMatchObject({
      downlinks: [{ f_port: 10, frm_payload: 'AQI=' }],
    })
  })

  it('fails a payload too large without sending, and leaves commands for other devices queued', async () => {
    const outlet = fakeOutlet()
    const sender = fakeSender()
    const t = targets(outlet, sender)
    await t.remember('acme', ids, headers(good), new Date())
    const sink = (await outlet.sink('acme', 'd1'))!
    expect(await sink.deliver(command({ payload: Buffer.alloc(300) }))).toEqual({
      kind: 'failed',
      reason: 'payload-too-large',
    })
    expect(await sink.deliver(command({ device: 'other' }))).toEqual({ kind: 'gone' })
    expect(sender.sent).toHaveLength(0)
  })

  it('is the same sink until the next webhook call stores the target again', async () => {
    const outlet = fakeOutlet()
    const t = targets(outlet)
    await t.remember('acme', ids, headers(good), new Date())
    const first = await outlet.sink('acme', 'd1')
    expect(await outlet.sink('acme', 'd1')).toBe(first)
    await t.remember('acme', ids, headers(good), new Date())
    const second = await outlet.sink('acme', 'd1')
    expect(second).toBeDefined()
    expect(second).not.toBe(first)
  })

  it('stops being offered when closed, and closes the sender', async () => {
    const outlet = fakeOutlet()
    const sender = fakeSender()
    const t = targets(outlet, sender)
    expect(outlet.providers.size).toBe(1)
    t.close()
    expect(outlet.providers.size).toBe(0)
    expect(sender.closed()).toBe(true)
  })

  it('never writes the API key to the log', async () => {
    const outlet = fakeOutlet()
    const t = targets(outlet, fakeSender([{ kind: 'gone' }]))
    await t.remember('acme', ids, headers(good), new Date())
    await t.remember('acme', ids, headers({ ...good, 'x-downlink-push': 'ftp://x' }), new Date())
    await (await outlet.sink('acme', 'd1'))!.deliver(command())
    expect(lines.length).toBeGreaterThan(1)
    expect(lines.join('\n')).not.toContain(API_KEY)
    expect(lines.join('\n')).not.toContain('N3V3RL0GG3D')
  })
})
