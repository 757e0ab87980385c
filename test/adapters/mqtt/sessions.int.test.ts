// Sessions with MQTT.js: one per device (a second connection takes it over, here or on another
// instance sharing Redis), revocation when the registry changes, connection events with their
// reasons (takeover, revoked, keepalive-timeout, shutdown), and the connect timeout.
import { connect as tcpConnect } from 'node:net'
import type { Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createRedisCluster } from '../../../core/cluster/redis.ts'
import { silentLogger } from '../../../core/log.ts'
import { uniqueName } from '../../helpers/wait.ts'
import type { Backend, Instance } from './harness.ts'
import {
  PASSWORD,
  closed,
  connect,
  connectionData,
  deviceWithPassword,
  isConnection,
  login,
  newTenant,
  ofDevice,
  startBackend,
  startInstance,
  tcpUrl,
} from './harness.ts'

let backend: Backend
let instance: Instance

beforeAll(async () => {
  backend = await startBackend()
  instance = await startInstance(backend, { config: { connectTimeoutMs: 500 } })
})

afterAll(async () => {
  await instance?.stop()
  await backend?.close()
})

async function tenantWith(...devices: string[]): Promise<string> {
  const tenant = newTenant()
  await backend.registry.createTenant(tenant, { enabled: true })
  for (const device of devices) await deviceWithPassword(backend, tenant, device)
  return tenant
}

const reasons = async (tenant: string, device: string, count: number): Promise<Array<string | undefined>> =>
  (await backend.waitFor((r) => ofDevice(tenant, device)(r) && isConnection(r), count)).map((r) => {
    const data = connectionData(r)
    return data.status === 'connected' ? 'connected' : data.reason
  })

/** A CONNECT packet (MQTT 3.1.1 §3.1) written by hand, for a client that then says nothing more. */
function connectPacket(clientId: string, username: string, password: string, keepalive: number): Buffer {
  const str = (s: string): Buffer => {
    const b = Buffer.from(s)
    return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b])
  }
  const body = Buffer.concat([
    str('MQTT'),
    Buffer.from([4, 0xc2, keepalive >> 8, keepalive & 0xff]), // level 4; username, password, clean
    str(clientId),
    str(username),
    str(password),
  ])
  return Buffer.concat([Buffer.from([0x10, body.length]), body])
}

function rawSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, '127.0.0.1', () => resolve(socket))
    socket.once('error', reject)
  })
}

describe('MQTT session takeover', () => {
  it('closes the first connection of a device when a second one connects, whatever its client id', async () => {
    const tenant = await tenantWith('dev')
    const first = await connect(tcpUrl(instance), { ...login('dev', tenant), clientId: 'first' })
    const firstGone = closed(first)
    const second = await connect(tcpUrl(instance), { ...login('dev', tenant), clientId: 'second' })
    await firstGone
    expect(second.connected).toBe(true)
    await second.publishAsync('still/here', 'after takeover', { qos: 1 })
    await second.endAsync()
    await first.endAsync(true)
    expect(await reasons(tenant, 'dev', 4)).toEqual([
      'connected',
      'takeover',
      'connected',
      'client-disconnect',
    ])
    expect(await instance.cluster.sessionOwner({ tenant, device: 'dev' })).toBeUndefined()
  })

  it('keeps devices of different tenants apart even when they use the same client id', async () => {
    const [a, b] = [await tenantWith('dev'), await tenantWith('dev')]
    const one = await connect(tcpUrl(instance), { ...login('dev', a), clientId: 'same-id' })
    const two = await connect(tcpUrl(instance), { ...login('dev', b), clientId: 'same-id' })
    await one.publishAsync('ping', 'a', { qos: 1 })
    await two.publishAsync('ping', 'b', { qos: 1 })
    expect([one.connected, two.connected]).toEqual([true, true])
    await Promise.all([one.endAsync(), two.endAsync()])
  })
})

describe('MQTT revocation', () => {
  it('closes the session within a second when its credential is deleted, or the password changed', async () => {
    const tenant = await tenantWith('dev')
    const [credential] = await backend.registry.listCredentials(tenant, 'dev')
    let client = await connect(tcpUrl(instance), login('dev', tenant))
    let gone = closed(client)
    const started = Date.now()
    await backend.registry.deleteCredential(tenant, 'dev', credential!.id)
    await gone
    expect(Date.now() - started).toBeLessThan(1_000)
    await client.endAsync(true)

    await backend.registry.setPassword(tenant, 'dev', PASSWORD)
    client = await connect(tcpUrl(instance), login('dev', tenant))
    gone = closed(client)
    await backend.registry.setPassword(tenant, 'dev', 'a brand new password')
    await gone
    await client.endAsync(true)
    expect(await reasons(tenant, 'dev', 4)).toEqual(['connected', 'revoked', 'connected', 'revoked'])
  })

  it('closes a disabled device, keeps a device whose labels changed, and closes every device of a disabled tenant', async () => {
    const tenant = await tenantWith('a', 'b', 'c')
    const [a, b, c] = await Promise.all(
      ['a', 'b', 'c'].map((d) => connect(tcpUrl(instance), login(d, tenant))),
    )
    const aGone = closed(a!)
    const labelled = new Promise<void>((resolve) => {
      const off = instance.auth.onChange((change) => {
        if (change.device === 'b' && change.op === 'updated') {
          off()
          resolve()
        }
      })
    })
    await backend.registry.updateDevice(tenant, 'b', { labels: { room: 'kitchen' } })
    await backend.registry.updateDevice(tenant, 'a', { enabled: false })
    await Promise.all([aGone, labelled])
    // The label change came before the disable; b has been re-checked and kept by now.
    await c!.publishAsync('sync', 'x', { qos: 1 })
    expect([a!.connected, b!.connected, c!.connected]).toEqual([false, true, true])

    const others = [closed(b!), closed(c!)]
    await backend.registry.updateTenant(tenant, { enabled: false })
    await Promise.all(others)
    await Promise.all([a, b, c].map((client) => client!.endAsync(true)))
    expect(await reasons(tenant, 'a', 2)).toEqual(['connected', 'revoked'])
    expect(await reasons(tenant, 'b', 2)).toEqual(['connected', 'revoked'])
  })
})

describe('MQTT connection limits', () => {
  it('closes a connection that sends no CONNECT in time, and counts it', async () => {
    const socket = await rawSocket(instance.ports['mqtt']!)
    const before = await instance.metric('tributary_mqtt_refusals_total', { reason: 'connect-timeout' })
    await new Promise((resolve) => socket.once('close', resolve))
    expect(await instance.metric('tributary_mqtt_refusals_total', { reason: 'connect-timeout' })).toBe(
      before + 1,
    )
  })

  it('ends a silent client after one and a half keep-alive periods, with reason keepalive-timeout', async () => {
    const tenant = await tenantWith('quiet')
    const socket = await rawSocket(instance.ports['mqtt']!)
    const connack = new Promise<Buffer>((resolve) => socket.once('data', resolve))
    socket.write(connectPacket(uniqueName('quiet'), `quiet@${tenant}`, PASSWORD, 1))
    expect([...(await connack)]).toEqual([0x20, 2, 0, 0])
    await new Promise((resolve) => socket.once('close', resolve))
    expect(await reasons(tenant, 'quiet', 2)).toEqual(['connected', 'keepalive-timeout'])
  })
})

describe('MQTT across instances sharing Redis', () => {
  let other: Instance
  let third: Instance

  beforeAll(async () => {
    const prefix = `${uniqueName('mqtt-int')}:`
    const redis = () => createRedisCluster({ url: inject('redisUrl'), log: silentLogger, keyPrefix: prefix })
    other = await startInstance(backend, { cluster: redis() })
    third = await startInstance(backend, { cluster: redis() })
  })

  afterAll(async () => {
    await other?.stop()
    await third?.stop()
  })

  it('a second connection on another instance takes the session over; revocation reaches the instance holding it', async () => {
    const tenant = await tenantWith('roamer')
    const first = await connect(tcpUrl(other), login('roamer', tenant))
    const firstGone = closed(first)
    const second = await connect(tcpUrl(third), login('roamer', tenant))
    await firstGone
    expect(second.connected).toBe(true)
    await first.endAsync(true)
    expect(await reasons(tenant, 'roamer', 3)).toContain('takeover')

    const secondGone = closed(second)
    await backend.registry.updateDevice(tenant, 'roamer', { enabled: false })
    await secondGone
    await second.endAsync(true)
    const all = await reasons(tenant, 'roamer', 4)
    expect(all.filter((r) => r === 'connected')).toHaveLength(2)
    expect(all.filter((r) => r !== 'connected').sort()).toEqual(['revoked', 'takeover'])
  })
})

describe('MQTT adapter stop', () => {
  it('closes live connections with reason shutdown and without their last will, then stops listening', async () => {
    const own = await startInstance(backend)
    const tenant = await tenantWith('dev')
    const client = await connect(tcpUrl(own), {
      ...login('dev', tenant),
      will: { topic: 'status', payload: Buffer.from('lost'), qos: 1, retain: false },
    })
    const gone = closed(client)
    await own.stop()
    await gone
    await client.endAsync(true)
    expect(await reasons(tenant, 'dev', 2)).toEqual(['connected', 'shutdown'])
    expect(backend.received.some((r) => ofDevice(tenant, 'dev')(r) && r.data === 'lost')).toBe(false)
    await expect(connect(tcpUrl(own), login('dev', tenant))).rejects.toThrow()
  })
})
