// A command as the request to TTN's downlink queue (The Things Stack's webhook downlink API), and
// TTN's answer as the dispatcher's delivery result.
import { describe, expect, it } from 'vitest'
import { deliveryOf, downlinkRequest } from '../../../adapters/http/ttn/downlink-send.ts'

const target = {
  push: 'https://eu1.cloud.thethings.network/api/v3/as/applications/app1/webhooks/wh1/devices/d1/down/push',
  replace:
    'https://eu1.cloud.thethings.network/api/v3/as/applications/app1/webhooks/wh1/devices/d1/down/replace',
  apiKey: 'NNSXS.ABCDEFGHIJ.KLMNOPQRST',
  seenAt: new Date('2026-11-30T00:00:00.000Z'),
}
const ID = '019ad1f0-7c2e-7b1a-9c4d-2f6e8a0b1c3d'

function built(command: Parameters<typeof downlinkRequest>[1]) {
  const request = downlinkRequest(target, command)
  if ('kind' in request) throw new Error(request.reason)
  return { ...request, json: JSON.parse(request.body.toString()) as unknown }
}

describe('downlinkRequest', () => {
  it('pushes the payload as base64 on the command’s FPort with the bearer key and a correlation id', () => {
    const request = built({
      id: ID,
      payload: Buffer.from([0x01, 0x02, 0xff]),
      fport: 15,
      downlink: undefined,
    })
    expect(request.url).toBe(target.push)
    expect(request.headers).toMatchObject({
      authorization: `Bearer ${target.apiKey}`,
      'content-type': 'application/json',
    })
    expect(request.json).toEqual({
      downlinks: [
        {
          f_port: 15,
          frm_payload: 'AQL/',
          priority: 'NORMAL',
          correlation_ids: [`tributary:command:${ID}`],
        },
      ],
    })
  })

  it('uses FPort 1 when the command names none, and the replace URL when asked', () => {
    const request = built({ id: ID, payload: Buffer.from('hi'), fport: undefined, downlink: 'replace' })
    expect(request.url).toBe(target.replace)
    expect(request.json).toMatchObject({ downlinks: [{ f_port: 1, frm_payload: 'aGk=' }] })
    expect(built({ id: ID, payload: Buffer.alloc(0), fport: undefined, downlink: 'push' }).url).toBe(
      target.push,
    )
  })

  it('sends an empty payload as an empty frm_payload', () => {
    expect(built({ id: ID, payload: Buffer.alloc(0), fport: 2, downlink: undefined }).json).toMatchObject({
      downlinks: [{ f_port: 2, frm_payload: '' }],
    })
  })

  it('fails a payload longer than any LoRaWAN data rate carries (242 bytes)', () => {
    expect(
      downlinkRequest(target, { id: ID, payload: Buffer.alloc(243), fport: 1, downlink: undefined }),
    ).toEqual({
      kind: 'failed',
      reason: 'payload-too-large',
    })
    expect(
      'url' in downlinkRequest(target, { id: ID, payload: Buffer.alloc(242), fport: 1, downlink: undefined }),
    ).toBe(true)
  })

  it('leaves out a correlation id TTN would refuse as too long, and still sends the downlink', () => {
    const request = built({ id: 'x'.repeat(90), payload: Buffer.from('a'), fport: 1, downlink: undefined })
    expect(request.json).toEqual({ downlinks: [{ f_port: 1, frm_payload: 'YQ==', priority: 'NORMAL' }] })
  })
})

describe('deliveryOf', () => {
  it('takes 2xx as delivered', () => {
    for (const status of [200, 202, 204]) expect(deliveryOf(status)).toEqual({ kind: 'delivered' })
  })

  it('fails on 4xx (and redirects), naming the status', () => {
    for (const status of [301, 400, 401, 403, 404, 409]) {
      expect(deliveryOf(status)).toEqual({ kind: 'failed', reason: `ttn-${status}` })
    }
  })

  it('keeps the command queued on 5xx, 429 and 408', () => {
    for (const status of [500, 502, 503, 504, 429, 408]) expect(deliveryOf(status)).toEqual({ kind: 'gone' })
  })
})
