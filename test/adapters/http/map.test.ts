// HTTP ⇄ device message: channels from paths, credentials from Authorization, the query, content
// types and the JSON rule.
import { describe, expect, it } from 'vitest'
import {
  checkJson,
  commandWait,
  contentTypeOf,
  credentialsOf,
  deviceMessage,
  isJsonType,
  onBehalfOf,
  targetOf,
  traceparentOf,
} from '../../../adapters/http/map.ts'

const basic = (userPass: string): string => `Basic ${Buffer.from(userPass).toString('base64')}`

const telemetry = (channel: string) => ({ ok: true, value: { kind: 'telemetry', channel } })

describe('targetOf: channels', () => {
  it('takes the path after /v1/ as the channel', () => {
    expect(targetOf('/v1/sensors/temperature')).toEqual(telemetry('sensors/temperature'))
    expect(targetOf('/v1/a.b_c~d-e')).toEqual(telemetry('a.b_c~d-e'))
  })

  it('refuses characters outside the channel charset, empty levels, too many levels and no channel', () => {
    for (const path of [
      '/v1/',
      '/v1/a b',
      '/v1/a%20b',
      '/v1/a//b',
      '/v1/a/',
      '/v1/1/2/3/4/5/6/7/8/9',
      '/v2/a',
      '/v1/$x',
    ]) {
      const result = targetOf(path)
      expect(result.ok, path).toBe(false)
      expect(result.reserved, path).toBeUndefined()
    }
    expect(targetOf(`/v1/${'a'.repeat(257)}`).ok).toBe(false)
    expect(targetOf(`/v1/${'a'.repeat(256)}`).ok).toBe(true)
  })

  it("marks Tributary's own first levels as reserved", () => {
    for (const first of ['command', 'config', 'files', 'gw']) {
      expect(targetOf(`/v1/${first}/x`)).toMatchObject({ ok: false, reserved: true })
    }
    expect(targetOf('/v1/commands/x').ok).toBe(true)
  })
})

describe('credentialsOf', () => {
  it('reads Basic <device>@<tenant>:<password>, splitting at the first colon', () => {
    expect(credentialsOf(basic('dev-1@acme:pa:ss'))).toEqual({
      kind: 'password',
      username: 'dev-1@acme',
      password: 'pa:ss',
    })
    expect(credentialsOf(basic('dev-1@acme:pw').replace('Basic', 'bAsIc'))).toMatchObject({
      kind: 'password',
    })
  })

  it('reads a Bearer token as a token', () => {
    expect(credentialsOf('Bearer tdt_abc_def')).toEqual({ kind: 'token', token: 'tdt_abc_def' })
  })

  it('tells a missing header from a malformed one', () => {
    expect(credentialsOf(undefined)).toEqual({ kind: 'none' })
    expect(credentialsOf('  ')).toEqual({ kind: 'none' })
    for (const header of [
      'Basic',
      'Basic !!!',
      basic('no-colon'),
      basic(':pw'),
      'Digest abc',
      `Bearer ${'x'.repeat(1100)}`,
    ]) {
      expect(credentialsOf(header), header).toEqual({ kind: 'malformed' })
    }
  })
})

describe('targetOf', () => {
  it('reads POST /v1/command/res/<request id>/<status> as a response, any other channel as telemetry', () => {
    expect(targetOf('/v1/command/res/r-1.a_b~c/204')).toEqual({
      ok: true,
      value: { kind: 'response', requestId: 'r-1.a_b~c', status: 204 },
    })
    expect(targetOf('/v1/sensors/t')).toEqual({
      ok: true,
      value: { kind: 'telemetry', channel: 'sensors/t' },
    })
  })

  it('refuses a malformed response path, and the rest of the command level as reserved', () => {
    for (const path of [
      '/v1/command/res/r1',
      '/v1/command/res/r1/99',
      '/v1/command/res/r1/600',
      '/v1/command/res/r%201/200',
      '/v1/command/res/r1/200/x',
    ]) {
      expect(targetOf(path).ok, path).toBe(false)
    }
    expect(targetOf('/v1/command/reboot')).toMatchObject({ ok: false, reserved: true })
    expect(targetOf('/v1/command')).toMatchObject({ ok: false, reserved: true })
  })
})

describe('query', () => {
  it('takes ?as= only as a device id', () => {
    expect(onBehalfOf(undefined)).toEqual({ ok: true, value: undefined })
    expect(onBehalfOf('child-1')).toEqual({ ok: true, value: 'child-1' })
    expect(onBehalfOf('child/1').ok).toBe(false)
    expect(onBehalfOf('').ok).toBe(false)
  })

  it('takes ?ct= as whole seconds up to the configured bound', () => {
    expect(commandWait(undefined, 60)).toEqual({ ok: true, value: undefined })
    expect(commandWait('0', 60)).toEqual({ ok: true, value: 0 })
    expect(commandWait('60', 60)).toEqual({ ok: true, value: 60 })
    expect(commandWait('300', 300)).toEqual({ ok: true, value: 300 })
    for (const bad of ['61', '-1', '1.5', 'x', '', '1e3', '99999999']) {
      expect(commandWait(bad, 60).ok, bad).toBe(false)
    }
  })
})

describe('content types', () => {
  it('keeps a valid media type and defaults a body without one to application/octet-stream', () => {
    expect(contentTypeOf('application/json; charset=utf-8', 3)).toEqual({
      ok: true,
      value: 'application/json; charset=utf-8',
    })
    expect(contentTypeOf(undefined, 3)).toEqual({ ok: true, value: 'application/octet-stream' })
    expect(contentTypeOf(undefined, 0)).toEqual({ ok: true, value: undefined })
    expect(contentTypeOf('text/plain;format="fixed"', 1).ok).toBe(true)
  })

  it('refuses what is not a media type', () => {
    for (const bad of ['json', 'application/', 'a b/c', 'text/plain; x', `text/${'x'.repeat(300)}`]) {
      expect(contentTypeOf(bad, 1).ok, bad).toBe(false)
    }
  })

  it('knows JSON by application/json and by the +json suffix', () => {
    expect(isJsonType('application/json')).toBe(true)
    expect(isJsonType('Application/JSON; charset=utf-8')).toBe(true)
    expect(isJsonType('application/senml+json')).toBe(true)
    expect(isJsonType('application/cloudevents+json')).toBe(true)
    expect(isJsonType('text/json-ish')).toBe(false)
    expect(isJsonType('application/octet-stream')).toBe(false)
    expect(isJsonType(undefined)).toBe(false)
  })

  it('accepts one UTF-8 JSON text and nothing else', () => {
    expect(checkJson(Buffer.from('{"a":[1,2]}')).ok).toBe(true)
    expect(checkJson(Buffer.from('42')).ok).toBe(true)
    expect(checkJson(Buffer.from('{"a":')).ok).toBe(false)
    expect(checkJson(Buffer.from('')).ok).toBe(false)
    expect(checkJson(Buffer.from([0x22, 0xff, 0x22])).ok).toBe(false)
  })
})

describe('deviceMessage', () => {
  const base = {
    tenant: 'acme',
    sender: 'gw-1',
    channel: 'temp',
    body: Buffer.from('21'),
    contentType: 'text/plain',
    traceparent: undefined,
    time: new Date(0),
  }

  it('is the sender’s own message without ?as=', () => {
    expect(deviceMessage({ ...base, device: undefined })).toMatchObject({
      tenant: 'acme',
      device: 'gw-1',
      sender: undefined,
      protocol: 'http',
      channel: 'temp',
      contentType: 'text/plain',
    })
  })

  it('belongs to the named device with the gateway as sender', () => {
    expect(deviceMessage({ ...base, device: 'child-1' })).toMatchObject({ device: 'child-1', sender: 'gw-1' })
  })

  it('carries no content type for an empty body', () => {
    expect(deviceMessage({ ...base, device: undefined, body: Buffer.alloc(0) }).contentType).toBeUndefined()
  })
})

describe('traceparentOf', () => {
  it('keeps a well-formed W3C traceparent and drops anything else', () => {
    const good = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    expect(traceparentOf(good)).toBe(good)
    expect(traceparentOf('00-00000000000000000000000000000000-00f067aa0ba902b7-01')).toBeUndefined()
    expect(traceparentOf('garbage')).toBeUndefined()
    expect(traceparentOf(undefined)).toBeUndefined()
  })
})
