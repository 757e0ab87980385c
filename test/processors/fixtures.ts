// Registry rows and events for the processor unit tests.
import { buildEvent } from '../../core/events/build.ts'
import type { CloudEvent } from '../../core/events/cloudevent.ts'
import type { Credential, Device, Tenant } from '../../core/registry/model.ts'

const versioned = { version: 1, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z' }

export function tenantRow(id: string, over: Partial<Tenant> = {}): Tenant {
  return {
    id,
    enabled: true,
    oidc: null,
    quotas: {
      maxDevices: null,
      maxMessagesPerSecond: null,
      maxEventsPerSecond: null,
      maxBytesPerSecond: null,
      maxPayloadBytes: null,
      maxFileStorageBytes: null,
      maxFiles: null,
    },
    authMethods: ['password'],
    trustAnchors: [],
    settings: {},
    ...versioned,
    ...over,
  }
}

export function deviceRow(tenant: string, id: string, over: Partial<Device> = {}): Device {
  return {
    tenant,
    id,
    enabled: true,
    labels: {},
    gateways: [],
    appVersion: null,
    lastSeen: null,
    ...versioned,
    ...over,
  }
}

export function telemetry(tenant: string, device: string, sender?: string, credential?: string): CloudEvent {
  return buildEvent({
    kind: 'telemetry',
    tenant,
    device,
    sender,
    credential,
    protocol: 'mqtt',
    subject: 'temp',
    data: Buffer.from('{"t":21}'),
    datacontenttype: 'application/json',
  })
}

/** A password credential row of a device. */
export function credentialRow(tenant: string, device: string, id: string, enabled = true): Credential {
  return {
    type: 'password',
    tenant,
    device,
    id,
    enabled,
    expiresAt: null,
    passwordHash: 'not-a-hash',
    ...versioned,
  }
}

/** A lookup over fixed rows, as RegistryAuth.tenant/findDevice/findCredential would answer. */
export function lookups(tenants: Tenant[], devices: Device[], credentials: Credential[] = []) {
  return {
    tenant: async (id: string) => tenants.find((t) => t.id === id),
    findDevice: async (t: string, d: string) => devices.find((x) => x.tenant === t && x.id === d),
    findCredential: async (t: string, d: string, id: string) =>
      credentials.find((c) => c.tenant === t && c.device === d && c.id === id),
  }
}

export const ctx = { bytes: 8, now: new Date('2026-01-01T00:00:00.000Z') }
