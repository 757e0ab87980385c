// Slow and stalled clients do not hold up anyone else: connections that send half a CONNECT, or
// connect and then stop reading while they flood, are cut off on their own deadlines while a
// well-behaved device connects, publishes QoS 1 and gets its PUBACKs.
import { connect as tcpConnect } from 'node:net'
import type { Socket } from 'node:net'
import mqttPacket from 'mqtt-packet'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { Backend, Instance } from './harness.ts'
import {
  PASSWORD,
  connect,
  deviceWithPassword,
  isTelemetry,
  login,
  newTenant,
  ofDevice,
  startBackend,
  startInstance,
  tcpUrl,
} from './harness.ts'

const CONNECT_TIMEOUT_MS = 1_000
let backend: Backend
let instance: Instance

beforeAll(async () => {
  backend = await startBackend()
  instance = await startInstance(backend, {
    config: { connectTimeoutMs: CONNECT_TIMEOUT_MS, drainTimeoutMs: 1_000, publishRate: 100_000 },
  })
})

afterAll(async () => {
  await instance?.stop()
  await backend?.close()
})

function rawSocket(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(instance.ports['mqtt']!, '127.0.0.1', () => resolve(socket))
    socket.once('error', reject)
  })
}

const closedSocket = (socket: Socket): Promise<void> =>
  new Promise((resolve) => {
    if (socket.destroyed) resolve()
    socket.once('close', () => resolve())
  })

it('cuts off half-sent CONNECTs on the connect deadline while another device publishes', async () => {
  const tenant = newTenant()
  await backend.registry.createTenant(tenant, { enabled: true })
  await deviceWithPassword(backend, tenant, 'good')

  // Twenty connections that send the first bytes of a CONNECT and then nothing more.
  const connect3 = mqttPacket.generate({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: true,
    clientId: 'slow',
    keepalive: 30,
    username: `good@${tenant}`,
    password: Buffer.from(PASSWORD),
  })
  const stalled = await Promise.all(Array.from({ length: 20 }, () => rawSocket()))
  for (const socket of stalled) socket.write(connect3.subarray(0, 5))
  const cutOff = Promise.all(stalled.map(closedSocket))

  const client = await connect(tcpUrl(instance), login('good', tenant))
  for (let i = 0; i < 20; i++) await client.publishAsync('slow/test', `m${i}`, { qos: 1 })
  await backend.waitFor((r) => isTelemetry(r) && ofDevice(tenant, 'good')(r), 20)
  // The well-behaved device finished while every stalled connection was still open or just cut.
  await cutOff
  expect(stalled.every((s) => s.destroyed)).toBe(true)
  await client.endAsync()
})

it('a device that floods and never reads its PUBACKs does not stop another device', async () => {
  const tenant = newTenant()
  await backend.registry.createTenant(tenant, { enabled: true })
  await deviceWithPassword(backend, tenant, 'flood')
  await deviceWithPassword(backend, tenant, 'calm')

  const flood = await rawSocket()
  flood.write(
    mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId: 'flood',
      keepalive: 30,
      username: `flood@${tenant}`,
      password: Buffer.from(PASSWORD),
    }),
  )
  flood.pause() // never reads CONNACK or PUBACKs
  const payload = Buffer.alloc(512, 1)
  let sent = 0
  const pump = (): void => {
    while (sent < 5_000 && !flood.destroyed) {
      sent++
      const more = flood.write(
        mqttPacket.generate({
          cmd: 'publish',
          topic: 'flood/data',
          payload,
          qos: 1,
          dup: false,
          retain: false,
          messageId: (sent % 65_535) + 1,
        }),
      )
      if (!more) return void flood.once('drain', pump)
    }
  }
  flood.on('error', () => undefined)
  pump()

  const calm = await connect(tcpUrl(instance), login('calm', tenant))
  for (let i = 0; i < 50; i++) await calm.publishAsync('calm/data', `c${i}`, { qos: 1 })
  const calmEvents = await backend.waitFor((r) => isTelemetry(r) && ofDevice(tenant, 'calm')(r), 50)
  expect(calmEvents.map((r) => r.data)).toEqual(Array.from({ length: 50 }, (_, i) => `c${i}`))
  await calm.endAsync()
  flood.destroy()
})
