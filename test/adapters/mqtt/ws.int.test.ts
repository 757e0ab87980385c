// MQTT over WebSocket: MQTT.js on ws://…/mqtt with subprotocol mqtt, and what other paths,
// plain HTTP requests and upgrades without the subprotocol get; and a start that fails on a taken
// port, naming the variable.
import { createServer } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { isTributaryError } from '../../../core/errors.ts'
import type { Backend, Instance } from './harness.ts'
import {
  connect,
  connectionData,
  deviceWithPassword,
  isConnection,
  isTelemetry,
  login,
  newTenant,
  ofDevice,
  startBackend,
  startInstance,
  wsUrl,
} from './harness.ts'

let backend: Backend
let instance: Instance

beforeAll(async () => {
  backend = await startBackend()
  instance = await startInstance(backend)
})

afterAll(async () => {
  await instance?.stop()
  await backend?.close()
})

/** The HTTP status an upgrade request gets, or 101 with the agreed subprotocol. */
function upgrade(url: string, protocols: string[]): Promise<{ status: number; protocol?: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, protocols)
    socket.once('open', () => {
      resolve({ status: 101, protocol: socket.protocol })
      socket.close()
    })
    socket.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0 })
      res.resume()
      socket.terminate()
    })
    socket.once('error', (err) => (socket.readyState === WebSocket.CLOSED ? undefined : reject(err)))
  })
}

describe('MQTT over WebSocket', () => {
  it('takes MQTT.js on /mqtt with subprotocol mqtt and reports the mqtt-ws listener', async () => {
    const tenant = newTenant()
    await backend.registry.createTenant(tenant, { enabled: true })
    await deviceWithPassword(backend, tenant, 'browser')
    const client = await connect(wsUrl(instance), login('browser', tenant))
    await client.publishAsync('ws/reading', '{"v":1}', { qos: 1 })
    await client.publishAsync('ws/reading', '{"v":2}', { qos: 0 })
    await client.endAsync()
    const events = await backend.waitFor(ofDevice(tenant, 'browser'), 4)
    expect(events.filter(isTelemetry).map((r) => r.data)).toEqual(['{"v":1}', '{"v":2}'])
    expect(events.filter(isConnection).map(connectionData)).toMatchObject([
      { status: 'connected', listener: 'mqtt-ws' },
      { status: 'disconnected', listener: 'mqtt-ws', reason: 'client-disconnect' },
    ])
    expect(await instance.metric('tributary_mqtt_messages_in_total', { tenant })).toBe(2)
  })

  it('agrees on the mqtt subprotocol, refuses other paths with 404 and upgrades without it with 400', async () => {
    const base = `ws://127.0.0.1:${instance.ports['mqttWs']}`
    expect(await upgrade(`${base}/mqtt`, ['mqtt'])).toEqual({ status: 101, protocol: 'mqtt' })
    expect(await upgrade(`${base}/mqtt?x=1`, ['mqttv3.1'])).toEqual({ status: 101, protocol: 'mqttv3.1' })
    expect(await upgrade(`${base}/other`, ['mqtt'])).toEqual({ status: 404 })
    expect(await upgrade(`${base}/mqtt`, ['chat'])).toEqual({ status: 400 })
    expect(await instance.metric('tributary_mqtt_refusals_total', { reason: 'ws-path' })).toBe(1)
    expect(await instance.metric('tributary_mqtt_refusals_total', { reason: 'ws-subprotocol' })).toBe(1)

    const http = `http://127.0.0.1:${instance.ports['mqttWs']}`
    expect((await fetch(`${http}/mqtt`)).status).toBe(426)
    expect((await fetch(`${http}/`)).status).toBe(404)
  })
})

describe('MQTT listeners', () => {
  it('fail the start on a taken port, naming its variable', async () => {
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    const port = (taken.address() as { port: number }).port
    try {
      const failed = await startInstance(backend, {
        config: { ws: { enabled: true, port, portVariable: 'TRIBUTARY_MQTT_WS_PORT' } },
      }).then(
        () => undefined,
        (err: unknown) => err,
      )
      expect(isTributaryError(failed, 'PORT_IN_USE')).toBe(true)
      expect((failed as Error).message).toContain('set TRIBUTARY_MQTT_WS_PORT to another port')
    } finally {
      taken.close()
    }
  })
})
