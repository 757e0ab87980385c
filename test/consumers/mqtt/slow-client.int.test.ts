// A slow application does not hold up the others: a client that subscribes and then stops
// reading is dropped once its unread bytes pass the bound, counted, while another subscriber of
// the same tenant receives every event.
import { connect as tcpConnect } from 'node:net'
import type { Socket } from 'node:net'
import mqttPacket from 'mqtt-packet'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { AppBroker } from './harness.ts'
import { collect, connect, startAppBroker } from './harness.ts'
import { waitUntil } from '../../helpers/wait.ts'

let app: AppBroker

beforeAll(async () => {
  app = await startAppBroker({ maxQueueBytes: 64 * 1024 })
})

afterAll(async () => {
  await app?.close()
})

/** A raw MQTT 3.1.1 client that connects and subscribes, then never reads again. */
async function stalledSubscriber(port: number, tenant: string, token: string): Promise<Socket> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = tcpConnect(port, '127.0.0.1', () => resolve(s))
    s.once('error', reject)
  })
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  const subscribed = new Promise<void>((resolve, reject) => {
    parser.on('packet', (packet) => {
      if (packet.cmd === 'connack' && packet.returnCode !== 0)
        reject(new Error(`CONNACK ${packet.returnCode}`))
      if (packet.cmd === 'suback') resolve()
    })
  })
  socket.on('data', (chunk: Buffer) => parser.parse(chunk))
  socket.write(
    mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId: 'stalled',
      keepalive: 60,
      username: tenant,
      password: Buffer.from(token),
    }),
  )
  socket.write(
    mqttPacket.generate({
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: [{ topic: `app/${tenant}/#`, qos: 1 }],
    }),
  )
  await subscribed
  socket.removeAllListeners('data')
  socket.pause()
  return socket
}

const droppedCount = () => app.metric('tributary_app_mqtt_clients_dropped_total', { reason: 'queue-limit' })

it('drops a subscriber that stops reading, while another one of the tenant gets every event', async () => {
  const t = await app.tenant()
  const stalled = await stalledSubscriber(app.broker.port, t.id, t.token)
  const reader = await connect(app.url, t.id, t.token)
  await reader.subscribeAsync(`app/${t.id}/#`, { qos: 1 })
  const got = collect(reader)

  // 32 KiB events, in rounds, until the broker cuts the stalled client off (the kernel's socket
  // buffers take tens of MB first); the bound is the number of rounds.
  const blob = 'x'.repeat(32 * 1024)
  let sent = 0
  for (let round = 0; round < 200 && (await droppedCount()) === 0; round++) {
    await app.publish(
      t.id,
      Array.from({ length: 20 }, (_, i) => ({ subject: 'load', data: { n: sent + i, blob } })),
    )
    sent += 20
    await waitUntil(() => got.length === sent, { message: () => `${sent} events, got ${got.length}` })
  }
  expect(await droppedCount()).toBe(1)
  // The stalled client sees its connection closed once it reads again.
  const gone = new Promise<void>((resolve) => stalled.once('close', () => resolve()))
  stalled.resume()
  await gone
  const numbers = got.map((d) => (d.event['data'] as { n: number }).n).sort((a, b) => a - b)
  expect(numbers).toEqual(Array.from({ length: sent }, (_, i) => i))
  expect(await app.metric('tributary_app_mqtt_connections', { tenant: t.id })).toBe(1)
  await reader.endAsync()
})
