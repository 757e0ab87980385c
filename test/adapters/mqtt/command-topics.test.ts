// The device broker's command topics: which SUBSCRIBE filters a device may hold, the topic and QoS
// a command goes out at, MQTT wildcard matching, and the response topics devices answer on.
import { describe, expect, it } from 'vitest'
import {
  checkCommandFilter,
  commandTopic,
  deliveryQos,
  responseRoute,
  topicMatches,
} from '../../../adapters/mqtt/command-topics.ts'

describe('checkCommandFilter', () => {
  it.each([
    'command/#',
    'command/+',
    'command/reboot',
    'command/reboot/#',
    'command/+/req/+',
    'command/reboot/req/#',
    'command/a/req/b/#',
  ])('grants the own-command filter %s', (filter) => {
    expect(checkCommandFilter(filter, 'dev-1')).toEqual({ ok: true, gatewayFor: undefined })
  })

  it('asks for the gateway check of a literal device, not of +', () => {
    expect(checkCommandFilter('gw/child/command/#', 'gw-1')).toEqual({ ok: true, gatewayFor: 'child' })
    expect(checkCommandFilter('gw/child/command/set/req/+', 'gw-1')).toEqual({
      ok: true,
      gatewayFor: 'child',
    })
    expect(checkCommandFilter('gw/+/command/#', 'gw-1')).toEqual({ ok: true, gatewayFor: undefined })
  })

  it.each([
    ['#', 'everything'],
    ['+/#', 'any first level'],
    ['+/reboot', 'any first level'],
    ['sensors/#', 'telemetry'],
    ['neighbour/#', "another device's data"],
    ['command', 'no command level'],
    ['command/', 'an empty level'],
    ['command/a/b/c/d', 'too deep'],
    ['command/#/x', '# not last'],
    ['command/a+', '+ inside a level'],
    ['command/a b', 'a space'],
    ['gw/#', 'all gateway topics'],
    ['gw/+/#', 'all gateway topics'],
    ['gw/child/temp', "a served device's telemetry"],
    ['gw/child/command', 'no command level'],
    ['gw/dev-1/command/#', 'itself as a gateway'],
    ['gw/a#/command/#', 'a wildcard in the device'],
    ['$SYS/#', 'broker topics'],
    [`command/${'x'.repeat(400)}`, 'too long'],
  ])('refuses %s (%s)', (filter) => {
    expect(checkCommandFilter(filter, 'dev-1').ok).toBe(false)
  })
})

describe('commandTopic', () => {
  it('puts one-way and request-style commands under command/, and gateway ones under gw/<device>/', () => {
    expect(commandTopic({ device: 'd', name: 'reboot', requestId: undefined }, 'd')).toBe('command/reboot')
    expect(commandTopic({ device: 'd', name: 'get', requestId: 'r-1' }, 'd')).toBe('command/get/req/r-1')
    expect(commandTopic({ device: 'child', name: 'set', requestId: undefined }, 'gw')).toBe(
      'gw/child/command/set',
    )
    expect(commandTopic({ device: 'child', name: 'get', requestId: 'r-2' }, 'gw')).toBe(
      'gw/child/command/get/req/r-2',
    )
  })
})

describe('topicMatches', () => {
  it.each([
    ['command/#', 'command/reboot', true],
    ['command/#', 'command/get/req/r-1', true],
    ['command/reboot/#', 'command/reboot', true],
    ['command/+', 'command/reboot', true],
    ['command/+', 'command/get/req/r-1', false],
    ['command/+/req/+', 'command/get/req/r-1', true],
    ['command/+/req/+', 'command/reboot', false],
    ['command/reboot', 'command/reboot', true],
    ['command/reboot', 'command/reboots', false],
    ['command/#', 'gw/child/command/reboot', false],
    ['gw/+/command/#', 'gw/child/command/reboot', true],
    ['gw/child/command/#', 'gw/other/command/reboot', false],
  ])('%s matches %s: %s', (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected)
  })
})

describe('deliveryQos', () => {
  it('takes the highest QoS of the matching command filters, at most 1', () => {
    const subs: Array<[string, number]> = [
      ['command/+', 0],
      ['command/reboot', 2],
      ['gw/+/command/#', 0],
    ]
    expect(deliveryQos(subs, 'command/reboot')).toBe(1)
    expect(deliveryQos(subs, 'command/update')).toBe(0)
    expect(deliveryQos(subs, 'gw/c/command/update')).toBe(0)
    expect(deliveryQos(subs, 'command/get/req/r-1')).toBeUndefined()
  })

  it('ignores filters that are not command filters', () => {
    expect(deliveryQos([['#', 1]], 'command/reboot')).toBeUndefined()
  })
})

describe('responseRoute', () => {
  it('reads own and gateway responses', () => {
    expect(responseRoute('command/res/r-1/200')).toEqual({ device: undefined, requestId: 'r-1', status: 200 })
    expect(responseRoute('gw/child/command/res/r-2/404')).toEqual({
      device: 'child',
      requestId: 'r-2',
      status: 404,
    })
  })

  it.each([
    'command/res/r-1/600',
    'command/res/r-1/20',
    'command/res/r-1',
    'command/res/r-1/200/x',
    'command/reboot',
    'gw/child/command/reboot',
    'gw/a b/command/res/r/200',
    'gw/command/res/r/200',
    'sensors/t',
  ])('is not a response: %s', (topic) => {
    expect(responseRoute(topic)).toBeUndefined()
  })
})
