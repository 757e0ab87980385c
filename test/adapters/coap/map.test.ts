// CoAP request options → channel, query, credentials and datacontenttype, and the device message.
import { describe, expect, it } from 'vitest'
import {
  CONTENT_FORMATS,
  checkJson,
  commandLocation,
  contentFormatOf,
  contentTypeOf,
  deviceMessage,
  isCommandsPath,
  isJsonType,
  parseCredentials,
  parsePath,
  parseQuery,
} from '../../../adapters/coap/map.ts'
import { command } from '../http/fake-outlet.ts'

const segments = (...parts: string[]): Buffer[] => parts.map((p) => Buffer.from(p))
const basic = (text: string): string => `Basic ${Buffer.from(text).toString('base64')}`

describe('parsePath', () => {
  it('takes /v1/<channel> with one level per Uri-Path option', () => {
    expect(parsePath(segments('v1', 'sensors', 'temperature'))).toEqual({
      ok: true,
      channel: 'sensors/temperature',
    })
    expect(parsePath(segments('v1', 'a.b_c~d-e'))).toEqual({ ok: true, channel: 'a.b_c~d-e' })
  })

  it('answers paths outside /v1 as not found', () => {
    for (const path of [segments(), segments('v2', 'x'), segments('telemetry')]) {
      expect(parsePath(path)).toMatchObject({ ok: false, notFound: true })
    }
  })

  it('refuses a missing channel, bad characters, a segment holding "/" and more than eight levels', () => {
    const bad = [
      segments('v1'),
      segments('v1', 'a b'),
      segments('v1', 'ümlaut'),
      segments('v1', 'a/b'),
      segments('v1', ''),
      segments('v1', '#'),
      segments('v1', ...Array.from({ length: 9 }, (_, i) => `l${i}`)),
      segments('v1', 'x'.repeat(257)),
    ]
    for (const path of bad) {
      const result = parsePath(path)
      expect(result.ok, path.join('/')).toBe(false)
      expect(result, path.join('/')).not.toHaveProperty('notFound')
    }
    expect(parsePath(segments('v1', ...Array.from({ length: 8 }, (_, i) => `l${i}`))).ok).toBe(true)
  })
})

describe('parseQuery', () => {
  it('reads token and as', () => {
    expect(parseQuery(segments('token=tdt_a_b', 'as=meter:7'))).toEqual({
      ok: true,
      query: { token: 'tdt_a_b', as: 'meter:7', extra: {} },
    })
    expect(parseQuery([])).toEqual({ ok: true, query: { extra: {} } })
  })

  it('reads ct as whole seconds up to the bound it is given', () => {
    expect(parseQuery(segments('ct=30', 'as=d1'), 60)).toEqual({
      ok: true,
      query: { ct: 30, as: 'd1', extra: {} },
    })
    expect(parseQuery(segments('ct=0'), 60)).toEqual({ ok: true, query: { ct: 0, extra: {} } })
    for (const bad of ['ct=61', 'ct=-1', 'ct=1.5', 'ct=x', 'ct=']) {
      expect(parseQuery(segments(bad), 60).ok, bad).toBe(false)
    }
    expect(parseQuery(segments('ct=1', 'ct=2'), 60).ok).toBe(false)
    // Without a bound (a GET) no wait is asked for.
    expect(parseQuery(segments('ct=1')).ok).toBe(false)
  })

  it('takes the extra keys a request names, and only those', () => {
    expect(parseQuery(segments('folder=fw', 'token=t'), 0, ['folder', 'limit'])).toEqual({
      ok: true,
      query: { token: 't', extra: { folder: 'fw' } },
    })
    expect(parseQuery(segments('folder=fw'))).toMatchObject({ ok: false })
    expect(parseQuery(segments('limit=1', 'limit=2'), 0, ['limit'])).toMatchObject({ ok: false })
  })

  it('refuses unknown, repeated and empty parameters and an as that is no device id', () => {
    for (const query of [
      segments('wait=30'),
      segments('as=a', 'as=b'),
      segments('token='),
      segments('token'),
      segments('as=a/b'),
      segments(`token=${'t'.repeat(1025)}`),
    ]) {
      expect(parseQuery(query).ok, query.join('&')).toBe(false)
    }
  })
})

describe('parseCredentials', () => {
  it('decodes Basic <device>@<tenant>:<password> from option 4209, as Drogue Cloud sends it', () => {
    expect(parseCredentials([basic('device1@example-app:hey-rodney')], undefined)).toEqual({
      kind: 'password',
      username: 'device1@example-app',
      password: 'hey-rodney',
    })
    // The library hands a registered option over as text; a raw one as bytes.
    expect(parseCredentials([Buffer.from(basic('d@t:p'))], undefined)).toMatchObject({ username: 'd@t' })
  })

  it('splits after the @, so device ids with ":" and passwords with ":" both work', () => {
    expect(parseCredentials([basic('urn:dev:7@acme:pa:ss')], undefined)).toEqual({
      kind: 'password',
      username: 'urn:dev:7@acme',
      password: 'pa:ss',
    })
  })

  it('takes a Bearer token in option 4209 or a token query, and needs one of them', () => {
    expect(parseCredentials(['Bearer tdt_x_y'], undefined)).toEqual({ kind: 'token', token: 'tdt_x_y' })
    expect(parseCredentials([], 'tdt_x_y')).toEqual({ kind: 'token', token: 'tdt_x_y' })
    expect(parseCredentials([], undefined)).toEqual({ kind: 'missing' })
  })

  it('calls everything else malformed', () => {
    for (const [values, token] of [
      [[basic('d@t:p')], 'tdt_x'],
      [[basic('d@t:p'), basic('d@t:p')], undefined],
      [['Digest abc'], undefined],
      [['Basic not*base64'], undefined],
      [[basic('no-at-sign:p')], undefined],
      [[basic('d@t-without-colon')], undefined],
      [['Bearer'], undefined],
      [[`Basic ${'A'.repeat(1100)}`], undefined],
    ] as const) {
      expect(parseCredentials(values, token).kind, String(values[0]).slice(0, 30)).toBe('malformed')
    }
  })
})

describe('content types', () => {
  it('maps the registered formats, spelling out UTF-8 for format 0', () => {
    expect(CONTENT_FORMATS.get(0)).toBe('text/plain;charset=utf-8')
    expect(CONTENT_FORMATS.get(42)).toBe('application/octet-stream')
    expect(CONTENT_FORMATS.get(50)).toBe('application/json')
    expect(CONTENT_FORMATS.get(60)).toBe('application/cbor')
    expect(contentTypeOf('application/cbor')).toEqual({ ok: true, type: 'application/cbor' })
    expect(contentTypeOf(undefined)).toEqual({ ok: true, type: undefined })
  })

  it('refuses formats it does not list: unknown numbers, other names, unreadable values', () => {
    for (const format of [9999, 'text/plain', 'application/cose; cose-type="cose-sign1"', null]) {
      expect(contentTypeOf(format).ok, String(format)).toBe(false)
    }
  })

  it('knows JSON types by application/json and the +json suffix', () => {
    expect(isJsonType('application/json')).toBe(true)
    expect(isJsonType('application/senml+json')).toBe(true)
    expect(isJsonType('application/cbor')).toBe(false)
    expect(isJsonType(undefined)).toBe(false)
  })

  it('checks that a body declared JSON parses, and leaves other bodies alone', () => {
    expect(checkJson('application/json', Buffer.from('{"a":1}'))).toBeUndefined()
    expect(checkJson('application/senml+json', Buffer.from('[{"n":"t","v":1}]'))).toBeUndefined()
    expect(checkJson('application/json', Buffer.from('{"a":'))).toMatchObject({ ok: false })
    expect(checkJson('application/json', Buffer.alloc(0))).toMatchObject({ ok: false })
    expect(checkJson('application/octet-stream', Buffer.from('{"a":'))).toBeUndefined()
  })
})

describe('deviceMessage', () => {
  const base = {
    tenant: 'acme',
    channel: 'c',
    payload: Buffer.from('x'),
    contentType: 'text/plain;charset=utf-8',
    time: new Date(0),
  }

  it('is the sender itself unless a gateway sends for another device', () => {
    expect(deviceMessage({ ...base, sender: 'd1', device: 'd1' })).toEqual({
      ...base,
      device: 'd1',
      sender: undefined,
      protocol: 'coap',
    })
    expect(deviceMessage({ ...base, sender: 'gw', device: 'd2' })).toMatchObject({
      device: 'd2',
      sender: 'gw',
    })
  })
})

describe('commands going out', () => {
  it('knows /v1/commands exactly', () => {
    expect(isCommandsPath(segments('v1', 'commands'))).toBe(true)
    for (const path of [segments('v1', 'command'), segments('v1', 'commands', 'x'), segments('commands')]) {
      expect(isCommandsPath(path)).toBe(false)
    }
  })

  it('gives a command the Content-Format of its media type, parameters and case aside', () => {
    expect(contentFormatOf('application/json')).toBe(50)
    expect(contentFormatOf('Application/JSON; charset=utf-8')).toBe(50)
    expect(contentFormatOf('text/plain; charset=utf-8')).toBe(0)
    expect(contentFormatOf('application/cbor')).toBe(60)
    expect(contentFormatOf('image/x-raw')).toBeUndefined()
    expect(contentFormatOf(undefined)).toBeUndefined()
  })

  it('names the command, its request id and a gateway child in Location-Query options', () => {
    const plain = command({ tenant: 't', device: 'd1', name: 'reboot' })
    expect(commandLocation(plain, 'd1').map(String)).toEqual(['command=reboot'])
    const request = command({ tenant: 't', device: 'child', name: 'dim', requestId: 'r-9' })
    expect(commandLocation(request, 'gw').map(String)).toEqual(['command=dim', 'request=r-9', 'device=child'])
  })
})
