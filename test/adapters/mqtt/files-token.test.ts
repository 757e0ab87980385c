// Upload-token topics over MQTT (docs/files.md): which PUBLISH topics are token requests, which
// SUBSCRIBE filters are the module's and which response filters it grants; and the shared reading
// of the request body (core/blobs/token-request.ts) that HTTP's POST /v1/files/token uses too.
import { describe, expect, it } from 'vitest'
import { ownsFilesFilter, responseFilterOf, tokenRequestOf } from '../../../adapters/mqtt/files-token.ts'
import { readTokenRequest } from '../../../core/blobs/token-request.ts'

describe('tokenRequestOf', () => {
  it('reads own and gateway requests', () => {
    expect(tokenRequestOf('files/token/req/r-1')).toEqual({
      device: undefined,
      requestId: 'r-1',
      mode: 'token',
    })
    expect(tokenRequestOf('gw/cam-2/files/token/req/42')).toEqual({
      device: 'cam-2',
      requestId: '42',
      mode: 'token',
    })
    expect(tokenRequestOf('files/presign/req/p1')).toEqual({
      device: undefined,
      requestId: 'p1',
      mode: 'presign',
    })
    expect(tokenRequestOf('gw/cam-2/files/presign/req/7')).toEqual({
      device: 'cam-2',
      requestId: '7',
      mode: 'presign',
    })
  })

  it('reads list and download requests, own and for a gateway', () => {
    expect(tokenRequestOf('files/list/req/l1')).toEqual({ device: undefined, requestId: 'l1', mode: 'list' })
    expect(tokenRequestOf('gw/cam-2/files/download/req/d1')).toEqual({
      device: 'cam-2',
      requestId: 'd1',
      mode: 'download',
    })
  })

  it('keeps an empty or odd request id for the caller to refuse', () => {
    expect(tokenRequestOf('files/token/req/')).toEqual({ device: undefined, requestId: '', mode: 'token' })
    expect(tokenRequestOf('files/token/req/a+b')).toEqual({
      device: undefined,
      requestId: 'a+b',
      mode: 'token',
    })
  })

  it('is undefined for every other topic', () => {
    for (const topic of [
      'files/token/req',
      'files/token/req/a/b',
      'files/token/res/a',
      'files/token',
      'files/upload/req/1',
      'files/lists/req/1',
      'files/download/res/1',
      'telemetry',
      'config/req/1',
      'gw/cam-2/files/token/req',
      'gw//files/token/req/1/2',
      'x/files/token/req/1',
    ])
      expect(tokenRequestOf(topic), topic).toBeUndefined()
  })
})

describe('response filters', () => {
  it('grants a request id, + and # under files/token/res', () => {
    expect(responseFilterOf('files/token/res/r-1')).toEqual({ device: undefined, id: 'r-1' })
    expect(responseFilterOf('files/token/res/+')).toEqual({ device: undefined, id: '+' })
    expect(responseFilterOf('files/token/res/#')).toEqual({ device: undefined, id: '#' })
    expect(responseFilterOf('gw/cam-2/files/token/res/+')).toEqual({ device: 'cam-2', id: '+' })
  })

  it('grants the same under files/presign/res', () => {
    expect(responseFilterOf('files/presign/res/p-1')).toEqual({ device: undefined, id: 'p-1' })
    expect(responseFilterOf('gw/cam-2/files/presign/res/#')).toEqual({ device: 'cam-2', id: '#' })
  })

  it('grants the same under files/list/res and files/download/res', () => {
    expect(responseFilterOf('files/list/res/+')).toEqual({ device: undefined, id: '+' })
    expect(responseFilterOf('gw/cam-2/files/download/res/d-1')).toEqual({ device: 'cam-2', id: 'd-1' })
  })

  it('refuses other filters', () => {
    for (const filter of [
      'files/#',
      'files/token/#',
      'files/token/res',
      'files/token/res/a/b',
      'files/token/res/a+',
      `files/token/res/${'x'.repeat(65)}`,
      'files/token/req/1',
      'files/+/res/+',
      'files/presign/req/1',
      'files/presigned/res/1',
    ])
      expect(responseFilterOf(filter), filter).toBeNull()
  })

  it('owns files/… and gw/<D>/files/… filters only', () => {
    expect(ownsFilesFilter('files/token/res/1')).toBe(true)
    expect(ownsFilesFilter('files/#')).toBe(true)
    expect(ownsFilesFilter('gw/cam-2/files/token/res/+')).toBe(true)
    expect(ownsFilesFilter('gw/cam-2/files')).toBe(true)
    expect(ownsFilesFilter('command/+')).toBe(false)
    expect(ownsFilesFilter('config')).toBe(false)
    expect(ownsFilesFilter('gw/cam-2/filesx')).toBe(false)
  })
})

describe('readTokenRequest', () => {
  it('reads the declaration', () => {
    const body = Buffer.from(
      JSON.stringify({ name: 'a.jpg', size: 3, sha256: 'ab', contentType: 'image/jpeg' }),
    )
    expect(readTokenRequest(body)).toEqual({
      ok: true,
      declaration: { name: 'a.jpg', size: 3, sha256: 'ab', contentType: 'image/jpeg' },
    })
  })

  it('refuses what is not a JSON object with name and size', () => {
    for (const body of [
      '',
      '[]',
      'null',
      '{',
      '{"name":"a"}',
      '{"size":1}',
      '{"name":"a","size":1,"sha256":1}',
    ])
      expect(readTokenRequest(Buffer.from(body)).ok, body).toBe(false)
    expect(readTokenRequest(Buffer.from([0x7b, 0xff, 0x7d])).ok).toBe(false)
  })
})
