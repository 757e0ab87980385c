// A client that stops reading: the socket's subscription pauses once its send buffer is full and
// resumes when the client reads again; a client that stays behind past the stall bound is closed.
import type { Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { EventClient, WsHarness } from './harness.ts'
import { open, startWsApi } from './harness.ts'
import { waitUntil } from '../../helpers/wait.ts'

let h: WsHarness | undefined

afterEach(async () => {
  await h?.close()
  h = undefined
})

const PAD = 'x'.repeat(60_000)
/** Far more than the loopback socket buffers hold, so the server's send buffer fills. */
const EVENTS = 400

const rawSocket = (client: EventClient): Socket => (client.ws as unknown as { _socket: Socket })._socket

async function flood(harness: WsHarness, tenant: string): Promise<void> {
  for (let i = 0; i < EVENTS; i++) await harness.publish(tenant, 'big', 'bulk', { i, pad: PAD })
}

describe('event socket backpressure', () => {
  it('pauses the subscription while the client does not read, and delivers everything once it does', async () => {
    const harness = (h = await startWsApi({ maxBufferedBytes: 256 * 1024, stallTimeoutMs: 60_000 }))
    await harness.registry.createTenant('slow', {})
    const client = await open(harness, 'slow')
    rawSocket(client).pause()
    await flood(harness, 'slow')
    await waitUntil(() => harness.server.events?.stats().paused === 1, {
      message: () => 'the subscription to pause',
    })
    expect(client.events.length).toBeLessThan(EVENTS)

    rawSocket(client).resume()
    const events = await client.receive(EVENTS)
    expect(events.map((e) => (e['data'] as { i: number }).i)).toEqual(
      Array.from({ length: EVENTS }, (_, i) => i),
    )
    expect(harness.server.events?.stats().paused).toBe(0)
    client.ws.close()
  })

  it('closes a client that stays behind past the stall bound', async () => {
    const harness = (h = await startWsApi({ maxBufferedBytes: 256 * 1024, stallTimeoutMs: 200 }))
    await harness.registry.createTenant('stuck', {})
    const client = await open(harness, 'stuck')
    rawSocket(client).pause()
    await flood(harness, 'stuck')
    await waitUntil(() => harness.server.events?.stats().open === 0, {
      message: () => 'the server to close the socket',
    })
    rawSocket(client).resume()
    const { code } = await client.closed
    // The close frame (1008) waits behind unread data; past that the server drops the connection (1006).
    expect([1006, 1008]).toContain(code)
    expect(client.events.length).toBeLessThan(EVENTS)
  })
})
