// The passthrough step: connection, registry and command status events go to the tenant topic unchecked.
import { describe, expect, it } from 'vitest'
import { buildEvent, buildRegistryEvent } from '../../core/events/build.ts'
import { buildStatusEvent } from '../../core/events/commands.ts'
import { buildConfigChangedEvent } from '../../core/events/config.ts'
import { createPassthrough } from '../../processors/steps/passthrough.ts'
import { ctx, lookups, telemetry, tenantRow } from './fixtures.ts'

const passthrough = createPassthrough(lookups([tenantRow('acme')], []))
const connection = (tenant: string) =>
  buildEvent({ kind: 'connection', tenant, device: 'd1', protocol: 'mqtt', subject: 'disconnected' })

describe('passthrough', () => {
  it('accepts connection and registry events of a known tenant', async () => {
    expect(await passthrough(connection('acme'), ctx)).toEqual({ kind: 'accept' })
    const registry = buildRegistryEvent({ tenant: 'acme', subject: 'device', data: Buffer.from('{}') })
    expect(await passthrough(registry, ctx)).toEqual({ kind: 'accept' })
  })

  it('accepts a command status event, also of a device the registry does not know (any more)', async () => {
    const command = { id: 'c1', tenant: 'acme', device: 'gone', name: 'reboot', requestId: undefined }
    const status = buildStatusEvent({ command, status: 'failed', reason: 'device-unknown', protocol: 'api' })
    expect(await passthrough(status, ctx)).toEqual({ kind: 'accept' })
    const elsewhere = buildStatusEvent({
      command: { ...command, tenant: 'ghost' },
      status: 'expired',
      protocol: 'api',
    })
    expect(await passthrough(elsewhere, ctx)).toEqual({ kind: 'reject', reason: 'tenant-unknown' })
  })

  it('accepts a config.changed event of a known tenant and rejects one of an unknown tenant', async () => {
    const change = (tenant: string) =>
      buildConfigChangedEvent({
        tenant,
        device: 'd1',
        configId: 'q3Jm2cH1yF8x0eZ4b7QK9w',
        previousConfigId: 'RBNvo1WzZ4oRRq0W9-hknp',
        time: new Date(),
      })
    expect(await passthrough(change('acme'), ctx)).toEqual({ kind: 'accept' })
    expect(await passthrough(change('ghost'), ctx)).toEqual({ kind: 'reject', reason: 'tenant-unknown' })
  })

  it('lets every other event continue to the next step', async () => {
    expect(await passthrough(telemetry('acme', 'd1'), ctx)).toEqual({ kind: 'continue' })
  })

  it('rejects a connection event of an unknown tenant (there is no topic for it)', async () => {
    expect(await passthrough(connection('ghost'), ctx)).toEqual({ kind: 'reject', reason: 'tenant-unknown' })
  })

  it('drops a registry event of a tenant that is gone (its own delete, or a change after it)', async () => {
    const deleted = buildRegistryEvent({ tenant: 'ghost', subject: 'tenant', data: Buffer.from('{}') })
    expect(await passthrough(deleted, ctx)).toEqual({ kind: 'drop' })
  })
})
