// Input checks of webhook subscriptions: URLs (scheme, userinfo, fragment, length, literal private
// hosts), filters, headers, retry policies, own signing secrets, and the defaults of a create.
import { describe, expect, it } from 'vitest'
import { isTributaryError } from '../../../core/errors.ts'
import {
  DEFAULT_RETRY,
  checkRetryPolicy,
  checkSigningSecret,
  checkSubscriptionFilter,
  checkWebhookHeaders,
  checkWebhookUrl,
  subscriptionFields,
} from '../../../core/registry/validate-subscriptions.ts'

/** The REGISTRY_INVALID field a call fails with. */
function failure(call: () => unknown): string {
  try {
    call()
  } catch (err) {
    if (isTributaryError(err, 'REGISTRY_INVALID')) return String(err.details?.['field'])
    throw err
  }
  throw new Error('expected REGISTRY_INVALID')
}

describe('webhook URL', () => {
  it('accepts https and http URLs and returns them normalised', () => {
    expect(checkWebhookUrl('https://hooks.example.com/in?a=1', false)).toBe(
      'https://hooks.example.com/in?a=1',
    )
    expect(checkWebhookUrl('HTTP://Hooks.Example.com:8080', false)).toBe('http://hooks.example.com:8080/')
    expect(checkWebhookUrl('https://8.8.8.8/x', false)).toBe('https://8.8.8.8/x')
    expect(checkWebhookUrl('https://[2606:4700::1111]/x', false)).toBe('https://[2606:4700::1111]/x')
    // Documentation ranges are special-purpose too: nothing there can answer.
    expect(() => checkWebhookUrl('https://[2001:db8::1]/x', false)).toThrow(
      /special-purpose address \(the operator allows such targets with TRIBUTARY_WEBHOOK_ALLOW_PRIVATE=true\)/,
    )
  })

  it('refuses other schemes, userinfo, fragments, relative and overlong URLs', () => {
    for (const url of [
      'ftp://example.com/',
      'file:///etc/passwd',
      'javascript:alert(1)',
      'https://user:pw@example.com/',
      'https://user@example.com/',
      'https://example.com/#frag',
      'https://example.com/#',
      '/relative',
      '',
      `https://example.com/${'a'.repeat(2048)}`,
      42,
    ]) {
      expect(
        failure(() => checkWebhookUrl(url, true)),
        String(url),
      ).toBe('url')
    }
  })

  it('refuses literal loopback, link-local and private hosts unless allowed', () => {
    const privateUrls = [
      'http://localhost/',
      'http://LOCALHOST./x',
      'http://api.localhost/',
      'http://127.0.0.1:8080/',
      'http://2130706433/',
      'http://0x7f.1/',
      'http://0.0.0.0/',
      'http://10.1.2.3/',
      'http://172.16.0.1/',
      'http://192.168.1.1/',
      'http://169.254.169.254/latest/meta-data',
      'http://100.64.0.1/',
      'http://[::1]/',
      'http://[::]/',
      'http://[fe80::1]/',
      'http://[fd00::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://[::ffff:10.0.0.1]/',
    ]
    for (const url of privateUrls) {
      expect(
        failure(() => checkWebhookUrl(url, false)),
        url,
      ).toBe('url')
      expect(checkWebhookUrl(url, true), url).toMatch(/^http:\/\//)
    }
  })
})

describe('subscription filter', () => {
  it('keeps the given fields, checked', () => {
    expect(checkSubscriptionFilter({})).toEqual({})
    const filter = {
      types: ['io.tributary.telemetry.v1'],
      channels: ['telemetry/+/temp', 'alerts/#'],
      devices: ['sensor-1'],
      labels: { site: 'north' },
    }
    expect(checkSubscriptionFilter(filter)).toEqual(filter)
  })

  it('refuses unknown fields, empty or long lists and bad entries', () => {
    expect(failure(() => checkSubscriptionFilter({ subject: 'x' }))).toBe('filter.subject')
    expect(failure(() => checkSubscriptionFilter({ types: [] }))).toBe('filter.types')
    expect(failure(() => checkSubscriptionFilter({ types: Array(33).fill('a') }))).toBe('filter.types')
    expect(failure(() => checkSubscriptionFilter({ types: ['ok', 'tab\there'] }))).toBe('filter.types[1]')
    expect(failure(() => checkSubscriptionFilter({ channels: ['a/#/b'] }))).toBe('filter.channels[0]')
    expect(failure(() => checkSubscriptionFilter({ devices: ['a b'] }))).toBe('filter.devices[0]')
    expect(failure(() => checkSubscriptionFilter({ devices: 'd1' }))).toBe('filter.devices')
    const labels = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']))
    expect(failure(() => checkSubscriptionFilter({ labels }))).toBe('filter.labels')
    expect(failure(() => checkSubscriptionFilter([]))).toBe('filter')
  })
})

describe('webhook headers', () => {
  it('accepts up to 32 token-named headers with printable values, Authorization included', () => {
    const headers = { Authorization: 'Bearer x', 'X-Key': "o'brien ~!" }
    expect(checkWebhookHeaders(headers)).toEqual(headers)
    const many = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`x-h${i}`, 'v']))
    expect(Object.keys(checkWebhookHeaders(many))).toHaveLength(32)
  })

  it('refuses reserved, malformed, repeated and oversized headers', () => {
    for (const name of [
      'Content-Type',
      'content-length',
      'Host',
      'Webhook-Signature',
      'ce-id',
      'CE-Type',
      'Transfer-Encoding',
    ]) {
      expect(
        failure(() => checkWebhookHeaders({ [name]: 'x' })),
        name,
      ).toBe(`headers.${name}`)
    }
    expect(failure(() => checkWebhookHeaders({ 'bad name': 'x' }))).toBe('headers.bad name')
    expect(failure(() => checkWebhookHeaders({ 'x-a': 'line\r\nInjected: 1' }))).toBe('headers.x-a')
    expect(failure(() => checkWebhookHeaders({ 'x-a': 'é' }))).toBe('headers.x-a')
    expect(failure(() => checkWebhookHeaders({ 'x-a': 'a'.repeat(1025) }))).toBe('headers.x-a')
    expect(failure(() => checkWebhookHeaders({ 'x-a': 1 }))).toBe('headers.x-a')
    expect(failure(() => checkWebhookHeaders({ 'X-A': 'a', 'x-a': 'b' }))).toBe('headers.x-a')
    const many = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`x-h${i}`, 'v']))
    expect(failure(() => checkWebhookHeaders(many))).toBe('headers')
  })
})

describe('retry policy and signing secret', () => {
  it('merges a partial policy into its base and keeps maxBackoffMs ≥ initialBackoffMs', () => {
    expect(checkRetryPolicy({}, DEFAULT_RETRY)).toEqual(DEFAULT_RETRY)
    expect(checkRetryPolicy({ maxAttempts: 1 }, DEFAULT_RETRY)).toEqual({ ...DEFAULT_RETRY, maxAttempts: 1 })
    expect(failure(() => checkRetryPolicy({ maxAttempts: 0 }, DEFAULT_RETRY))).toBe('retry.maxAttempts')
    expect(failure(() => checkRetryPolicy({ maxAttempts: 51 }, DEFAULT_RETRY))).toBe('retry.maxAttempts')
    expect(
      failure(() => checkRetryPolicy({ initialBackoffMs: 5000, maxBackoffMs: 4000 }, DEFAULT_RETRY)),
    ).toBe('retry.maxBackoffMs')
    expect(failure(() => checkRetryPolicy({ jitter: false }, DEFAULT_RETRY))).toBe('retry.jitter')
  })

  it('accepts whsec_ and the base64 of 24-64 bytes, nothing else', () => {
    const of = (n: number) => `whsec_${Buffer.alloc(n, 7).toString('base64')}`
    expect(checkSigningSecret(of(24))).toBe(of(24))
    expect(checkSigningSecret(of(64))).toBe(of(64))
    for (const bad of [
      of(23),
      of(65),
      'whsec_',
      'whsec_not base64!',
      `wh_${Buffer.alloc(32).toString('base64')}`,
      `${of(32)}x`,
      7,
    ]) {
      expect(
        failure(() => checkSigningSecret(bad)),
        String(bad),
      ).toBe('secret')
    }
  })
})

describe('subscription fields', () => {
  it('defaults everything but the URL on create', () => {
    expect(subscriptionFields({ url: 'https://example.com/' }, undefined, false)).toEqual({
      url: 'https://example.com/',
      filter: {},
      mode: 'binary',
      batchSize: null,
      headers: {},
      timeoutMs: 10_000,
      retry: DEFAULT_RETRY,
    })
    expect(failure(() => subscriptionFields({}, undefined, false))).toBe('url')
  })

  it('keeps the base for omitted fields and checks the given ones', () => {
    const base = subscriptionFields(
      { url: 'https://example.com/', mode: 'structured', batchSize: 10, retry: { maxAttempts: 3 } },
      undefined,
      false,
    )
    expect(subscriptionFields({ batchSize: null, retry: { maxBackoffMs: 2000 } }, base, false)).toEqual({
      ...base,
      batchSize: null,
      retry: { maxAttempts: 3, initialBackoffMs: 1000, maxBackoffMs: 2000 },
    })
    expect(failure(() => subscriptionFields({ mode: 'json' }, base, false))).toBe('mode')
    expect(failure(() => subscriptionFields({ batchSize: 0 }, base, false))).toBe('batchSize')
    expect(failure(() => subscriptionFields({ batchSize: 1001 }, base, false))).toBe('batchSize')
    expect(failure(() => subscriptionFields({ timeoutMs: 999 }, base, false))).toBe('timeoutMs')
    expect(failure(() => subscriptionFields({ timeoutMs: 30_001 }, base, false))).toBe('timeoutMs')
    expect(failure(() => subscriptionFields({ url: 'http://10.0.0.1/' }, base, false))).toBe('url')
  })
})
