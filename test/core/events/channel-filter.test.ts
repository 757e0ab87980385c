// Channel filters of route rules: exact channels, `+` for one level, a trailing `#` for the rest.
import { describe, expect, it } from 'vitest'
import { matchesChannel } from '../../../core/events/channel-filter.ts'

describe('matchesChannel', () => {
  it.each([
    // exact
    ['temp', 'temp', true],
    ['temp', 'temperature', false],
    ['a/b', 'a/b', true],
    ['a/b', 'a', false],
    ['a', 'a/b', false],
    ['A/b', 'a/b', false],
    // + matches exactly one level
    ['+', 'temp', true],
    ['+', 'a/b', false],
    ['a/+', 'a/b', true],
    ['a/+', 'a', false],
    ['a/+', 'a/b/c', false],
    ['+/b', 'x/b', true],
    ['+/b', 'x/c', false],
    ['a/+/c', 'a/x/c', true],
    ['a/+/c', 'a/x/y/c', false],
    ['+/+', 'a/b', true],
    ['+/+', 'a', false],
    // # matches the rest, including nothing (MQTT 5.0 §4.7.1.2)
    ['#', 'temp', true],
    ['#', 'a/b/c/d/e/f/g/h', true],
    ['a/#', 'a', true],
    ['a/#', 'a/b', true],
    ['a/#', 'a/b/c', true],
    ['a/#', 'b/a', false],
    ['a/#', 'ab', false],
    ['+/#', 'a', true],
    ['+/b/#', 'a/b/c', true],
    ['+/b/#', 'a/c/b', false],
    // wildcards only as whole levels, # only last
    ['a+', 'ab', false],
    ['a#', 'ab', false],
    ['#/a', 'x/a', false],
    ['a/b#', 'a/b', false],
  ])('%s ~ %s → %s', (filter, channel, expected) => {
    expect(matchesChannel(filter, channel)).toBe(expected)
  })
})
