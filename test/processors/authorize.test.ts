// The authorize step against registry rows as they are at processing time.
import { describe, expect, it } from 'vitest'
import { createAuthorize } from '../../processors/steps/authorize.ts'
import { credentialRow, ctx, deviceRow, lookups, telemetry, tenantRow } from './fixtures.ts'

const tenants = [tenantRow('acme'), tenantRow('off', { enabled: false })]
const devices = [
  deviceRow('acme', 'd1', { gateways: ['gw1', 'gw2', 'gw3'] }),
  deviceRow('acme', 'd2', { enabled: false }),
  deviceRow('acme', 'gw1'),
  deviceRow('acme', 'gw2', { enabled: false }),
  deviceRow('acme', 'gw9'),
  deviceRow('off', 'd1'),
]
const credentials = [
  credentialRow('acme', 'd1', 'c-live'),
  credentialRow('acme', 'd1', 'c-off', false),
  credentialRow('acme', 'gw1', 'c-gw'),
]
const authorize = createAuthorize(lookups(tenants, devices, credentials))

describe('authorize', () => {
  it('lets an enabled device of an enabled tenant continue', async () => {
    expect(await authorize(telemetry('acme', 'd1'), ctx)).toEqual({ kind: 'continue' })
  })

  it('lets a listed, enabled gateway act for the device', async () => {
    expect(await authorize(telemetry('acme', 'd1', 'gw1'), ctx)).toEqual({ kind: 'continue' })
  })

  it('lets an event continue whose credential still exists and is enabled (the sender’s, for a gateway)', async () => {
    expect(await authorize(telemetry('acme', 'd1', undefined, 'c-live'), ctx)).toEqual({ kind: 'continue' })
    expect(await authorize(telemetry('acme', 'd1', 'gw1', 'c-gw'), ctx)).toEqual({ kind: 'continue' })
  })

  it.each([
    ['unknown tenant', telemetry('nobody', 'd1'), 'tenant-unknown'],
    ['disabled tenant', telemetry('off', 'd1'), 'tenant-disabled'],
    ['unknown device', telemetry('acme', 'ghost'), 'device-unknown'],
    ['disabled device', telemetry('acme', 'd2'), 'device-disabled'],
    ['unlisted gateway', telemetry('acme', 'd1', 'gw9'), 'gateway-not-allowed'],
    ['disabled gateway', telemetry('acme', 'd1', 'gw2'), 'gateway-disabled'],
    ['deleted gateway', telemetry('acme', 'd1', 'gw3'), 'gateway-unknown'],
    [
      'credential deleted after acceptance',
      telemetry('acme', 'd1', undefined, 'c-gone'),
      'credential-revoked',
    ],
    [
      'credential disabled after acceptance',
      telemetry('acme', 'd1', undefined, 'c-off'),
      'credential-disabled',
    ],
    // A gateway authenticated with its own credential: the device's credentials are not the question.
    [
      'gateway credential looked up on the device',
      telemetry('acme', 'd1', 'gw1', 'c-live'),
      'credential-revoked',
    ],
  ])('rejects: %s', async (_name, event, reason) => {
    expect(await authorize(event, ctx)).toEqual({ kind: 'reject', reason })
  })

  it('rejects an event without tenant or device', async () => {
    const event = telemetry('acme', 'd1')
    const { device: _device, ...attributes } = event.attributes
    expect(await authorize({ attributes, data: undefined }, ctx)).toEqual({
      kind: 'reject',
      reason: 'event-unaddressed',
    })
  })
})
