// What the cluster state's absence stops each role from doing, and when that makes a process unready.
import { describe, expect, it } from 'vitest'
import { clusterCheck, clusterImpacts } from '../../main/health-checks.ts'

const listeners = {
  mqttEnabled: true,
  mqttsEnabled: false,
  mqttWsEnabled: true,
  httpEnabled: true,
  coapEnabled: true,
}
const noMqtt = { ...listeners, mqttEnabled: false, mqttWsEnabled: false }

describe('clusterImpacts', () => {
  it('makes a process that serves MQTT devices unready: no new session can be recorded', () => {
    const { critical, impacts } = clusterImpacts(['adapters'], listeners)
    expect(critical).toBe(true)
    expect(impacts).toContain('MQTT devices cannot connect')
    expect(impacts).toContain('HTTP and CoAP messages are accepted without the rate check')
  })

  it('keeps every other combination ready, naming what is degraded', () => {
    expect(clusterImpacts(['adapters'], noMqtt)).toMatchObject({ critical: false })
    expect(clusterImpacts(['processors', 'consumers', 'api'], listeners)).toEqual({
      critical: false,
      impacts: [
        'events of tenants with event or byte quotas wait',
        'API calls waiting for a command response may time out',
      ],
    })
  })
})

describe('clusterCheck', () => {
  it('adds what the roles cannot do to the reason, and passes a healthy answer on', async () => {
    let healthy = false
    const check = clusterCheck(
      {
        kind: 'redis',
        health: async () =>
          healthy ? { ok: true } : { ok: false, reason: 'Redis at r:6379 is unreachable: x' },
      },
      ['adapters'],
      listeners,
    )
    expect(check).toMatchObject({ name: 'cluster', critical: true })
    expect(await check.check()).toEqual({
      ok: false,
      reason: expect.stringMatching(
        /^Redis at r:6379 is unreachable: x; meanwhile MQTT devices cannot connect; /,
      ),
    })
    healthy = true
    expect(await check.check()).toEqual({ ok: true })
  })
})
