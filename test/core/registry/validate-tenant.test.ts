// Tenant input: the processors' tenant-wide quotas and the topic settings Tributary reads; every
// bad value is REGISTRY_INVALID naming its field.
import { describe, expect, it } from 'vitest'
import { isTributaryError } from '../../../core/errors.ts'
import {
  DEFAULT_TENANT_SPEC,
  QUOTA_LIMITS,
  checkQuotas,
  checkSettings,
  tenantSpec,
} from '../../../core/registry/validate-tenant.ts'

const now = new Date('2030-01-01T00:00:00Z')
const TEN_YEARS_MS = 10 * 365 * 86_400_000

function invalidField(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    if (!isTributaryError(err, 'REGISTRY_INVALID')) throw err
    expect(err.message).toContain(String(err.details?.['field']))
    return err.details?.['field']
  }
  throw new Error('expected REGISTRY_INVALID')
}

const none = DEFAULT_TENANT_SPEC.quotas

describe('tenant-wide quotas', () => {
  it('default to null (no limit) and keep what an update leaves out', () => {
    expect(none).toEqual({
      maxDevices: null,
      maxMessagesPerSecond: null,
      maxEventsPerSecond: null,
      maxBytesPerSecond: null,
      maxPayloadBytes: null,
      maxFileStorageBytes: null,
      maxFiles: null,
    })
    const base = tenantSpec(
      { quotas: { maxEventsPerSecond: 100, maxPayloadBytes: 4096 } },
      DEFAULT_TENANT_SPEC,
      now,
    )
    expect(base.quotas).toEqual({ ...none, maxEventsPerSecond: 100, maxPayloadBytes: 4096 })
    const next = tenantSpec({ quotas: { maxBytesPerSecond: 1, maxPayloadBytes: null } }, base, now)
    expect(next.quotas).toEqual({ ...none, maxEventsPerSecond: 100, maxBytesPerSecond: 1 })
  })

  it('take whole numbers from 1, payloads up to the bus record limit (1 MiB)', () => {
    expect(QUOTA_LIMITS.maxPayloadBytes).toBe(1024 * 1024)
    const top = checkQuotas(
      {
        maxEventsPerSecond: QUOTA_LIMITS.maxEventsPerSecond,
        maxBytesPerSecond: QUOTA_LIMITS.maxBytesPerSecond,
        maxPayloadBytes: 1024 * 1024,
      },
      none,
    )
    expect(top).toEqual({ ...none, ...QUOTA_LIMITS })
    for (const name of ['maxEventsPerSecond', 'maxBytesPerSecond', 'maxPayloadBytes'] as const) {
      expect(checkQuotas({ [name]: 1 }, none)[name]).toBe(1)
      for (const bad of [
        0,
        -1,
        1.5,
        '10',
        Number.NaN,
        Number.POSITIVE_INFINITY,
        QUOTA_LIMITS[name] + 1,
        {},
      ]) {
        expect(
          invalidField(() => checkQuotas({ [name]: bad }, none)),
          `${name} ${JSON.stringify(bad)}`,
        ).toBe(`quotas.${name}`)
      }
    }
    expect(invalidField(() => checkQuotas({ maxPayloadBytes: 1024 * 1024 + 1 }, none))).toBe(
      'quotas.maxPayloadBytes',
    )
    expect(invalidField(() => checkQuotas({ maxEventsPerSec: 1 }, none))).toBe('quotas.maxEventsPerSec')
  })
})

describe('configuration size setting', () => {
  it('takes 2 bytes to 1 MiB and refuses anything else, naming the field', () => {
    for (const configMaxBytes of [2, 65_536, 1_048_576])
      expect(checkSettings({ configMaxBytes })).toEqual({ configMaxBytes })
    for (const configMaxBytes of [0, 1, 1_048_577, 2.5, '1024', null]) {
      expect(invalidField(() => checkSettings({ configMaxBytes }))).toBe('settings.configMaxBytes')
    }
  })
})

describe('topic settings', () => {
  it('accept partitions 1-1000 and retention -1 or one minute to ten years', () => {
    for (const topicPartitions of [1, 12, 1000])
      expect(checkSettings({ topicPartitions })).toEqual({ topicPartitions })
    for (const topicRetentionMs of [-1, 60_000, 86_400_000, TEN_YEARS_MS]) {
      expect(checkSettings({ topicRetentionMs })).toEqual({ topicRetentionMs })
    }
  })

  it('refuse anything else, naming the field', () => {
    for (const topicPartitions of [0, -1, 1001, 2.5, '3', null, true]) {
      expect(invalidField(() => checkSettings({ topicPartitions }))).toBe('settings.topicPartitions')
    }
    for (const topicRetentionMs of [0, -2, 59_999, TEN_YEARS_MS + 1, 60_000.5, '60000', null]) {
      expect(invalidField(() => checkSettings({ topicRetentionMs }))).toBe('settings.topicRetentionMs')
    }
    expect(
      invalidField(() => tenantSpec({ settings: { topicPartitions: 0 } }, DEFAULT_TENANT_SPEC, now)),
    ).toBe('settings.topicPartitions')
  })

  it('leave other keys free-form, as before', () => {
    const settings = { topicpartitions: 'not ours', ttn: { mapping: 'decoded' }, topic: { partitions: 0 } }
    expect(checkSettings(settings)).toEqual(settings)
  })
})
