// The validate step: a channel's JSON Schema applies to the data of the tenant's events on that
// channel; compiled schemas are cached per tenant, channel and stored version.
import { describe, expect, it } from 'vitest'
import type { ChannelSchema } from '../../../core/registry/model.ts'
import { DETAIL_MAX_BYTES } from '../../../processors/step.ts'
import {
  createValidate,
  errorsDetail,
  isJsonContentType,
  validateReasons,
} from '../../../processors/steps/validate.ts'
import { ctx, event, versioned } from './events.ts'

const TEMP = {
  type: 'object',
  properties: { t: { type: 'number' } },
  required: ['t'],
} as const

type Row = Omit<ChannelSchema, 'version' | 'createdAt' | 'updatedAt'> & Partial<ChannelSchema>

/** A mutable schema table and a step reading it; `lookups` counts registry calls. */
function harness(rows: Row[], cacheSize?: number) {
  const table = rows.map((r): ChannelSchema => ({ ...versioned, ...r }))
  const lookups: string[] = []
  const step = createValidate(
    {
      channelSchema: async (tenant, channel) => {
        lookups.push(`${tenant}/${channel}`)
        return table.find((s) => s.tenant === tenant && s.channel === channel)
      },
    },
    { cacheSize },
  )
  const replace = (tenant: string, channel: string, over: Partial<ChannelSchema>) => {
    const i = table.findIndex((s) => s.tenant === tenant && s.channel === channel)
    table[i] = { ...table[i]!, ...over }
  }
  return { step, lookups, replace }
}

const json = (value: unknown, datacontenttype: string | undefined = 'application/json') =>
  event({ data: Buffer.from(JSON.stringify(value)), datacontenttype })
const continued = { kind: 'continue' }

describe('validate', () => {
  const { step, lookups } = harness([{ tenant: 'acme', channel: 'temp', schema: TEMP }])

  it('lets valid data continue', async () => {
    expect(await step(json({ t: 21.5 }), ctx)).toEqual(continued)
  })

  it('lets events on channels without a schema continue, JSON or not', async () => {
    expect(
      await step(
        event({
          subject: 'other',
          data: Buffer.from('\x00\x01'),
          datacontenttype: 'application/octet-stream',
        }),
        ctx,
      ),
    ).toEqual(continued)
    expect(await step(event({ tenant: 'beta' }), ctx)).toEqual(continued)
  })

  it('does not look anything up for an event without a channel or tenant', async () => {
    const before = lookups.length
    expect(await step(event({ subject: undefined }), ctx)).toEqual(continued)
    expect(await step(event({ attributes: { tenant: undefined } }), ctx)).toEqual(continued)
    expect(lookups.length).toBe(before)
  })

  it('refuses invalid data with the errors as a JSON array of path and message', async () => {
    const result = await step(json({ t: 'warm' }), ctx)
    expect(result).toMatchObject({ kind: 'reject', reason: 'schema-invalid' })
    const detail = result.kind === 'reject' ? result.detail : undefined
    expect(JSON.parse(detail ?? 'null')).toEqual([{ path: '/t', message: 'must be number' }])
    const missing = await step(json({}), ctx)
    expect(missing.kind === 'reject' && JSON.parse(missing.detail ?? 'null')).toEqual([
      { path: '', message: "must have required property 't'" },
    ])
  })

  describe('JSON data', () => {
    it.each([
      ['application/json', 'application/json'],
      ['with parameters', 'application/json; charset=utf-8'],
      ['in capitals', 'Application/JSON'],
      ['a +json suffix', 'application/senml+json'],
      ['a vendor +json type', 'application/vnd.acme.reading+json; v=2'],
      ['no content type', undefined],
    ])('reads %s as JSON', async (_name, contentType) => {
      expect(await step(json({ t: 1 }, contentType), ctx)).toEqual(continued)
      expect(await step(json({ t: 'x' }, contentType), ctx)).toMatchObject({ reason: 'schema-invalid' })
    })

    it.each([
      [
        'text/plain, even if the bytes are JSON',
        { data: Buffer.from('{"t":1}'), datacontenttype: 'text/plain' },
      ],
      [
        'application/octet-stream',
        { data: Buffer.from('{"t":1}'), datacontenttype: 'application/octet-stream' },
      ],
      ['a bare +json without type', { data: Buffer.from('{"t":1}'), datacontenttype: '+json' }],
      [
        'no content type and bytes that are not JSON',
        { data: Buffer.from('t=1'), datacontenttype: undefined },
      ],
      [
        'JSON content type and bytes that are not JSON',
        { data: Buffer.from('{"t":'), datacontenttype: 'application/json' },
      ],
      ['no data at all', { data: undefined, datacontenttype: undefined }],
      [
        'bytes that are not UTF-8',
        {
          data: Buffer.from([0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]),
          datacontenttype: 'application/json',
        },
      ],
    ])('refuses %s as data-not-json', async (_name, options) => {
      expect(await step(event(options), ctx)).toMatchObject({ kind: 'reject', reason: 'data-not-json' })
    })

    it('applies the schema to any JSON value, not only objects', async () => {
      const numbers = harness([{ tenant: 'acme', channel: 'temp', schema: { type: 'number' } }])
      expect(
        await numbers.step(event({ data: Buffer.from('21.5'), datacontenttype: undefined }), ctx),
      ).toEqual(continued)
      expect(await numbers.step(json('21.5'), ctx)).toMatchObject({ reason: 'schema-invalid' })
    })
  })

  it('refuses data the validator cannot get through (too deep for a recursive schema)', async () => {
    const recursive = {
      $ref: '#/$defs/n',
      $defs: { n: { type: 'object', properties: { a: { $ref: '#/$defs/n' } } } },
    }
    const deep = harness([{ tenant: 'acme', channel: 'temp', schema: recursive }])
    const n = 20_000
    const data = Buffer.from('{"a":'.repeat(n) + '{}' + '}'.repeat(n))
    const result = await deep.step(event({ data }), ctx)
    expect(result).toMatchObject({ kind: 'reject', reason: 'schema-invalid' })
    expect(result.kind === 'reject' && JSON.parse(result.detail ?? '[]')).toHaveLength(1)
  })

  it('refuses events against a stored schema that does not compile, saying why', async () => {
    const broken = harness([{ tenant: 'acme', channel: 'temp', schema: { type: 'nonsense' } }])
    const result = await broken.step(json({ t: 1 }), ctx)
    expect(result).toMatchObject({ kind: 'reject', reason: 'schema-unusable' })
    expect(result.kind === 'reject' && result.detail).toContain('schema')
    expect(await broken.step(json({ t: 1 }), ctx)).toMatchObject({ reason: 'schema-unusable' })
  })

  it('gives only the reasons it lists', () => {
    expect(validateReasons).toEqual(['data-not-json', 'schema-invalid', 'schema-unusable'])
  })

  it('lets a registry failure through, so the batch is retried', async () => {
    const failing = createValidate({ channelSchema: () => Promise.reject(new Error('registry down')) })
    await expect(failing(json({ t: 1 }), ctx)).rejects.toThrow('registry down')
  })
})

describe('validate: compiled schema cache', () => {
  const STRING_T = { type: 'object', properties: { t: { type: 'string' } } }
  // Whether the step used the number schema (TEMP) or the string one for { t: 1 }.
  const usesTemp = async (step: ReturnType<typeof harness>['step'], tenant = 'acme', subject = 'temp') =>
    (await step(event({ tenant, subject, data: Buffer.from('{"t":1}') }), ctx)).kind === 'continue'

  it('keeps the compiled schema while the stored version stays the same', async () => {
    const { step, replace } = harness([{ tenant: 'acme', channel: 'temp', schema: TEMP }])
    expect(await usesTemp(step)).toBe(true)
    // Only a write changes the schema, and every write changes the version: same version, same schema.
    replace('acme', 'temp', { schema: STRING_T })
    expect(await usesTemp(step)).toBe(true)
  })

  it('compiles again when the version changes', async () => {
    const { step, replace } = harness([{ tenant: 'acme', channel: 'temp', schema: TEMP }])
    expect(await usesTemp(step)).toBe(true)
    replace('acme', 'temp', { schema: STRING_T, version: 2, updatedAt: '2026-01-02T00:00:00.000Z' })
    expect(await usesTemp(step)).toBe(false)
  })

  it('compiles again for a schema deleted and created anew at the same version', async () => {
    const { step, replace } = harness([{ tenant: 'acme', channel: 'temp', schema: TEMP }])
    expect(await usesTemp(step)).toBe(true)
    const later = '2026-01-03T00:00:00.000Z'
    replace('acme', 'temp', { schema: STRING_T, createdAt: later, updatedAt: later })
    expect(await usesTemp(step)).toBe(false)
  })

  it('keeps tenants apart: the same channel and version in two tenants are two schemas', async () => {
    const { step } = harness([
      { tenant: 'acme', channel: 'temp', schema: TEMP },
      { tenant: 'beta', channel: 'temp', schema: STRING_T },
    ])
    expect(await usesTemp(step, 'acme')).toBe(true)
    expect(await usesTemp(step, 'beta')).toBe(false)
    expect(await usesTemp(step, 'acme')).toBe(true)
  })

  it('is bounded: the least recently used schema is dropped and compiled again on its next use', async () => {
    const { step, replace } = harness(
      [
        { tenant: 'acme', channel: 'a', schema: TEMP },
        { tenant: 'acme', channel: 'b', schema: TEMP },
        { tenant: 'acme', channel: 'c', schema: TEMP },
      ],
      2,
    )
    await usesTemp(step, 'acme', 'a')
    await usesTemp(step, 'acme', 'b')
    await usesTemp(step, 'acme', 'a') // a is now more recent than b
    await usesTemp(step, 'acme', 'c') // evicts b
    for (const channel of ['a', 'b', 'c']) replace('acme', channel, { schema: STRING_T })
    expect(await usesTemp(step, 'acme', 'a')).toBe(true) // still cached (and now most recent)
    expect(await usesTemp(step, 'acme', 'b')).toBe(false) // recompiled, which evicts c
    expect(await usesTemp(step, 'acme', 'c')).toBe(false)
  })
})

describe('isJsonContentType', () => {
  it.each([
    ['application/json', true],
    ['application/json;charset=utf-8', true],
    [' application/json ', true],
    ['application/cloudevents+json', true],
    ['application/json-seq', false],
    ['application/jsonx', false],
    ['text/json', false],
    ['application/x-json', false],
    ['+json', false],
    ['', false],
  ])('%j → %s', (contentType, expected) => {
    expect(isJsonContentType(contentType)).toBe(expected)
  })
})

describe('errorsDetail', () => {
  it('keeps whole errors only, within the detail limit, as valid JSON', () => {
    const errors = Array.from({ length: 20 }, (_, i) => ({ path: `/items/${i}`, message: 'x'.repeat(400) }))
    const detail = errorsDetail(errors)
    expect(Buffer.byteLength(detail)).toBeLessThanOrEqual(DETAIL_MAX_BYTES)
    const parsed = JSON.parse(detail) as typeof errors
    expect(parsed.length).toBeGreaterThan(1)
    expect(parsed.length).toBeLessThan(20)
    expect(parsed).toEqual(errors.slice(0, parsed.length))
  })

  it('shortens a single error longer than the limit, escapes and all', () => {
    const detail = errorsDetail([{ path: '/' + '\u0001'.repeat(5000), message: '€'.repeat(5000) }])
    expect(Buffer.byteLength(detail)).toBeLessThanOrEqual(DETAIL_MAX_BYTES)
    const [error] = JSON.parse(detail) as { path: string; message: string }[]
    expect(error?.path.startsWith('/\u0001')).toBe(true)
    expect(error?.message.startsWith('€€€')).toBe(true)
  })
})
