// Events, tenants and registry rows for the step unit tests.
import { buildEvent } from '../../../core/events/build.ts'
import type { CloudEvent, CloudEventAttributes } from '../../../core/events/cloudevent.ts'
import type { TenantQuotas } from '../../../core/registry/model.ts'

export const versioned = {
  version: 1,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
}

export const noQuotas: TenantQuotas = {
  maxDevices: null,
  maxMessagesPerSecond: null,
  maxEventsPerSecond: null,
  maxBytesPerSecond: null,
  maxPayloadBytes: null,
  maxFileStorageBytes: null,
  maxFiles: null,
}

export interface EventOptions {
  readonly tenant?: string
  readonly device?: string
  readonly subject?: string | undefined
  readonly data?: Buffer | undefined
  readonly datacontenttype?: string | undefined
  readonly extensions?: Readonly<Record<string, string>>
  /** Replaces the attributes buildEvent gave (undefined removes one). */
  readonly attributes?: Readonly<Record<string, string | undefined>>
}

/** A telemetry event on channel `temp` with JSON data unless told otherwise. */
export function event(options: EventOptions = {}): CloudEvent {
  const built = buildEvent({
    kind: 'telemetry',
    tenant: options.tenant ?? 'acme',
    device: options.device ?? 'd1',
    protocol: 'mqtt',
    subject: 'subject' in options ? options.subject : 'temp',
    data: 'data' in options ? options.data : Buffer.from('{"t":21}'),
    datacontenttype: 'datacontenttype' in options ? options.datacontenttype : 'application/json',
    extensions: options.extensions,
    id: '0190a2b4-0000-7000-8000-000000000001',
    time: new Date('2026-01-01T00:00:00.000Z'),
  })
  if (options.attributes === undefined) return built
  const attributes: Record<string, string | undefined> = { ...built.attributes, ...options.attributes }
  for (const [name, value] of Object.entries(attributes)) if (value === undefined) delete attributes[name]
  return { attributes: attributes as CloudEventAttributes, data: built.data }
}

export const ctx = { bytes: 8, now: new Date('2026-01-01T00:00:00.000Z') }
