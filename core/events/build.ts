// The one builder of Tributary events, partition keys and sources (STYLE.md 11).
import type { CloudEvent, CloudEventAttributes } from './cloudevent.ts'
import { TributaryError } from '../errors.ts'
import { assertChannel, assertDeviceId, assertTenantId, uuidv7 } from './ids.ts'

export const eventTypes = {
  telemetry: 'io.tributary.telemetry.v1',
  connection: 'io.tributary.connection.v1',
  command: 'io.tributary.command.v1',
  'command.response': 'io.tributary.command.response.v1',
  'command.status': 'io.tributary.command.status.v1',
  'file.uploaded': 'io.tributary.file.uploaded.v1',
  'config.delivered': 'io.tributary.config.delivered.v1',
  'config.applied': 'io.tributary.config.applied.v1',
  'config.changed': 'io.tributary.config.changed.v1',
  registry: 'io.tributary.registry.v1',
  // The Things Network v3 webhook messages other than uplinks (uplinks are telemetry); their data is
  // the TTN message's own JSON object (docs/ttn.md).
  'ttn.join': 'io.tributary.ttn.join.v1',
  'ttn.downlink.ack': 'io.tributary.ttn.downlink.ack.v1',
  'ttn.downlink.nack': 'io.tributary.ttn.downlink.nack.v1',
  'ttn.downlink.sent': 'io.tributary.ttn.downlink.sent.v1',
  'ttn.downlink.failed': 'io.tributary.ttn.downlink.failed.v1',
  'ttn.downlink.queued': 'io.tributary.ttn.downlink.queued.v1',
  'ttn.location': 'io.tributary.ttn.location.v1',
} as const

export type EventKind = keyof typeof eventTypes
export type Protocol = 'mqtt' | 'http' | 'coap' | 'ttn' | 'api' | 'kafka'

/** `<tenant>/<device>`, each part percent-encoded: the Kafka key and the partitionkey extension. */
export function partitionKey(tenant: string, device: string): string {
  return `${encodeURIComponent(tenant)}/${encodeURIComponent(device)}`
}

/** Splits a partition key made by partitionKey(). */
export function parsePartitionKey(key: string): { tenant: string; device: string } | undefined {
  const slash = key.indexOf('/')
  if (slash <= 0 || slash !== key.lastIndexOf('/')) return undefined
  try {
    return {
      tenant: decodeURIComponent(key.slice(0, slash)),
      device: decodeURIComponent(key.slice(slash + 1)),
    }
  } catch {
    return undefined
  }
}

/** `tributary://<tenant>/<device>`: the source of every event a device causes. */
export function eventSource(tenant: string, device: string): string {
  return `tributary://${partitionKey(tenant, device)}`
}

export interface EventInput {
  readonly kind: EventKind
  readonly tenant: string
  readonly device: string
  /** The gateway that sent it, when it differs from the device. */
  readonly sender?: string | undefined
  readonly protocol: Protocol
  /** The channel (telemetry) or another subject the type defines. */
  readonly subject?: string | undefined
  readonly data?: Buffer | undefined
  readonly datacontenttype?: string | undefined
  /** Receipt time; defaults to now. */
  readonly time?: Date | undefined
  readonly traceparent?: string | undefined
  /**
   * The id of the credential that authenticated the sender: ingress only, so that the processors can
   * refuse events of a credential revoked after the adapter accepted them; never on tenant topics.
   */
  readonly credential?: string | undefined
  readonly id?: string | undefined
  /**
   * More extension attributes (e.g. LoRaWAN metadata): names of 1-20 lowercase letters and digits
   * (CloudEvents 1.0 §3.1.1) that do not shadow an attribute this module sets.
   */
  readonly extensions?: Readonly<Record<string, string>> | undefined
}

/** Attributes buildEvent sets itself, which an extension may not replace. */
export const OWN_ATTRIBUTE_NAMES: readonly string[] = [
  'specversion',
  'id',
  'source',
  'type',
  'subject',
  'time',
  'datacontenttype',
  'dataschema',
  'data',
  'tenant',
  'device',
  'sender',
  'protocol',
  'partitionkey',
  'traceparent',
  'credential',
]
const OWN_ATTRIBUTES: ReadonlySet<string> = new Set(OWN_ATTRIBUTE_NAMES)
/** CloudEvents 1.0 §3.1.1: attribute names are lowercase letters and digits, at most 20 characters. */
export const EXTENSION_NAME = /^[a-z0-9]{1,20}$/

function checkExtensions(extensions: Readonly<Record<string, string>>): void {
  for (const [name, value] of Object.entries(extensions)) {
    if (!EXTENSION_NAME.test(name) || OWN_ATTRIBUTES.has(name) || typeof value !== 'string') {
      throw new TributaryError(
        'EVENT_INVALID',
        `extension ${JSON.stringify(name)} is not allowed: use 1-20 of a-z 0-9, not a name Tributary sets, with a string value`,
      )
    }
  }
}

export function buildEvent(input: EventInput): CloudEvent {
  assertTenantId(input.tenant)
  assertDeviceId(input.device)
  if (input.sender !== undefined) assertDeviceId(input.sender)
  if (input.kind === 'telemetry' && input.subject !== undefined) assertChannel(input.subject)
  if (input.extensions !== undefined) checkExtensions(input.extensions)
  const key = partitionKey(input.tenant, input.device)
  const attributes: Record<string, string> = {
    ...input.extensions,
    specversion: '1.0',
    id: input.id ?? uuidv7(),
    source: `tributary://${key}`,
    type: eventTypes[input.kind],
    time: (input.time ?? new Date()).toISOString(),
    tenant: input.tenant,
    device: input.device,
    protocol: input.protocol,
    partitionkey: key,
  }
  if (input.subject !== undefined) attributes['subject'] = input.subject
  if (input.datacontenttype !== undefined) attributes['datacontenttype'] = input.datacontenttype
  if (input.sender !== undefined && input.sender !== input.device) attributes['sender'] = input.sender
  if (input.traceparent !== undefined) attributes['traceparent'] = input.traceparent
  if (input.credential !== undefined) attributes['credential'] = input.credential
  return { attributes: attributes as unknown as CloudEventAttributes, data: input.data }
}

/** A JSON body as event data with its content type. */
export function jsonData(value: unknown): { data: Buffer; datacontenttype: 'application/json' } {
  return { data: Buffer.from(JSON.stringify(value)), datacontenttype: 'application/json' }
}

/**
 * Registry change events (io.tributary.registry.v1). Device-scoped changes are keyed and sourced
 * `<tenant>/<device>` like device events, so one device's changes stay in order; tenant-scoped
 * ones (the tenant, its API tokens) by `<tenant>` alone.
 */
export interface RegistryEventInput {
  readonly tenant: string
  readonly device?: string | undefined
  /** What changed, e.g. `device` or `credential`. */
  readonly subject: string
  readonly data: Buffer
  readonly time?: Date | undefined
  readonly id?: string | undefined
}

export function registryPartitionKey(tenant: string, device?: string): string {
  return device === undefined ? encodeURIComponent(tenant) : partitionKey(tenant, device)
}

export function buildRegistryEvent(input: RegistryEventInput): CloudEvent {
  assertTenantId(input.tenant)
  if (input.device !== undefined) assertDeviceId(input.device)
  const key = registryPartitionKey(input.tenant, input.device)
  const attributes: Record<string, string> = {
    specversion: '1.0',
    id: input.id ?? uuidv7(),
    source: `tributary://${key}`,
    type: eventTypes.registry,
    subject: input.subject,
    time: (input.time ?? new Date()).toISOString(),
    datacontenttype: 'application/json',
    tenant: input.tenant,
    partitionkey: key,
  }
  if (input.device !== undefined) attributes['device'] = input.device
  return { attributes: attributes as unknown as CloudEventAttributes, data: input.data }
}

/** What an io.tributary.file.uploaded.v1 event says about the file (schemas/io.tributary.file.uploaded.v1.json). */
export interface FileUploadedInput {
  readonly tenant: string
  readonly device: string
  readonly protocol: Protocol
  readonly file: {
    readonly id: string
    readonly name: string
    readonly size: number
    readonly sha256: string
    readonly contentType: string
  }
  /** Where the content is (CloudEvents `dataref` extension, the claim check): a URI reference. */
  readonly dataref: string
  /** Upload time. */
  readonly time?: Date | undefined
  readonly traceparent?: string | undefined
}

export function buildFileUploadedEvent(input: FileUploadedInput): CloudEvent {
  const { id, name, size, sha256, contentType } = input.file
  return buildEvent({
    kind: 'file.uploaded',
    tenant: input.tenant,
    device: input.device,
    protocol: input.protocol,
    subject: 'files',
    ...jsonData({ id, name, size, sha256, contentType }),
    time: input.time,
    traceparent: input.traceparent,
    // CloudEvents dataref extension (extensions/dataref.md): a URI-reference to the data.
    extensions: { dataref: input.dataref },
  })
}
