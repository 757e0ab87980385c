// The application broker's topic space: where each event is published, and which topic filters a
// client of one tenant may hold (never one that could match another tenant's topics).
import { describe, expect, it } from 'vitest'
import { MAX_FILTER_LENGTH, checkFilter, eventTopic } from '../../../consumers/mqtt/topics.ts'

describe('eventTopic', () => {
  it('puts an event under its channel, and an event without one at the tenant root', () => {
    expect(eventTopic('acme', 'sensors/temperature')).toBe('app/acme/sensors/temperature')
    expect(eventTopic('acme', 'status')).toBe('app/acme/status')
    expect(eventTopic('acme', undefined)).toBe('app/acme')
  })

  it('never splits a subject that is not a channel into topic levels or wildcards', () => {
    expect(eventTopic('acme', 'a/+/b')).toBe('app/acme')
    expect(eventTopic('acme', '#')).toBe('app/acme')
    expect(eventTopic('acme', 'a//b')).toBe('app/acme')
    expect(eventTopic('acme', '')).toBe('app/acme')
  })
})

describe('checkFilter', () => {
  it.each([
    'app/acme',
    'app/acme/#',
    'app/acme/+',
    'app/acme/sensors/temperature',
    'app/acme/sensors/+',
    'app/acme/+/temperature',
    'app/acme/sensors/#',
    'app/acme/a.b_c~d-e',
    'app/acme/1/2/3/4/5/6/7/8',
  ])('grants %s to a client of acme', (filter) => {
    expect(checkFilter(filter, 'acme')).toBeUndefined()
  })

  it.each(['app/other', 'app/other/#', 'app/other/sensors/temperature', 'app/+', 'app/+/sensors', 'app/#'])(
    'refuses %s as another tenant',
    (filter) => {
      expect(checkFilter(filter, 'acme')).toBe('other-tenant')
    },
  )

  it.each([
    '#',
    '+',
    '+/acme',
    '+/+/#',
    'app',
    'app/',
    'app/acme/',
    'app/acme//x',
    'app/acme/#/x',
    'app/acme/se#',
    'app/acme/se+',
    'app/acme/a b',
    'app/acme/ü',
    'app/acme/1/2/3/4/5/6/7/8/9',
    'App/acme',
    '/app/acme',
    '$SYS/#',
    '$share/g/app/acme',
    'app/ACME',
    'devices/acme',
  ])('refuses %s as a bad filter', (filter) => {
    expect(checkFilter(filter, 'acme')).toBe('bad-filter')
  })

  it('refuses a filter longer than any topic of the tenant before splitting it', () => {
    const long = `app/acme/${'a'.repeat(MAX_FILTER_LENGTH)}`
    expect(checkFilter(long, 'acme')).toBe('bad-filter')
  })

  it('treats a tenant whose id is a prefix of another as a different tenant', () => {
    expect(checkFilter('app/acme-eu/#', 'acme')).toBe('other-tenant')
    expect(checkFilter('app/acme/#', 'acme-eu')).toBe('other-tenant')
  })
})
