// Registry change events on the bus: a RegistryChange as an io.tributary.registry.v1 CloudEvent
// (Kafka binary mode) and back. The outbox relay writes them; caches and sessions read them.
import type { BusMessage, OutgoingRecord } from '../bus/bus.ts'
import { TributaryError } from '../errors.ts'
import { buildRegistryEvent, eventTypes } from '../events/build.ts'
import { isDeviceId, isTenantId } from '../events/ids.ts'
import { decode, encodeBinary } from '../events/kafka-codec.ts'
import type { RegistryChange } from './model.ts'

const OPS: ReadonlyArray<RegistryChange['op']> = ['created', 'updated', 'deleted']
const RESOURCES: ReadonlyArray<RegistryChange['resource']> = [
  'tenant',
  'device',
  'credential',
  'api-token',
  'schema',
  'routes',
  'subscription',
  'config',
]
/** Ids are generated (credentials, API tokens, subscriptions) or channels (schemas): 256 characters at most. */
const MAX_ID_LENGTH = 256

export function encodeChange(change: RegistryChange, topic: string, time?: Date): OutgoingRecord {
  const data: RegistryChange = {
    op: change.op,
    resource: change.resource,
    tenant: change.tenant,
    ...(change.device === undefined ? {} : { device: change.device }),
    ...(change.id === undefined ? {} : { id: change.id }),
    version: change.version,
  }
  const event = buildRegistryEvent({
    tenant: change.tenant,
    device: change.device,
    subject: change.resource,
    data: Buffer.from(JSON.stringify(data)),
    time,
  })
  const { key, value, headers } = encodeBinary(event)
  return { topic, key: key?.toString(), value, headers }
}

const problem = (message: string): TributaryError =>
  new TributaryError('EVENT_INVALID', `not a registry change: ${message}`)

/** The change a registry event carries; throws EVENT_INVALID for anything else. */
export function decodeChange(message: Pick<BusMessage, 'key' | 'value' | 'headers'>): RegistryChange {
  const event = decode({
    key: message.key === undefined ? undefined : Buffer.from(message.key),
    value: message.value,
    headers: message.headers,
  })
  if (event.attributes.type !== eventTypes.registry) throw problem(`type ${event.attributes.type}`)
  let parsed: unknown
  try {
    parsed = JSON.parse(event.data?.toString() ?? '')
  } catch (cause) {
    throw new TributaryError('EVENT_INVALID', 'not a registry change: data is not JSON', { cause })
  }
  if (typeof parsed !== 'object' || parsed === null) throw problem('data is not an object')
  const data = parsed as Record<string, unknown>
  const { op, resource, tenant, device, id, version } = data
  if (!OPS.includes(op as RegistryChange['op'])) throw problem(`op ${String(op)}`)
  if (!RESOURCES.includes(resource as RegistryChange['resource']))
    throw problem(`resource ${String(resource)}`)
  if (typeof tenant !== 'string' || !isTenantId(tenant)) throw problem('tenant')
  if (device !== undefined && (typeof device !== 'string' || !isDeviceId(device))) throw problem('device')
  if (id !== undefined && (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH))
    throw problem('id')
  if (typeof version !== 'number' || !Number.isSafeInteger(version)) throw problem('version')
  return {
    op: op as RegistryChange['op'],
    resource: resource as RegistryChange['resource'],
    tenant,
    ...(device === undefined ? {} : { device }),
    ...(id === undefined ? {} : { id }),
    version,
  }
}
