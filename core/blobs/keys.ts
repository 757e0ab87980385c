// Object keys of the blob store: `<tenant>/<device>/<id>`, each part percent-encoded, where the id
// is opaque (never a file name a device chose). Both stores check every key they are given, so a
// key can never climb out of the store's folder or bucket prefix.
import { TributaryError } from '../errors.ts'
import { assertDeviceId, assertTenantId } from '../events/ids.ts'

const SEGMENT = /^[A-Za-z0-9._~%:-]{1,200}$/
const ID = /^[A-Za-z0-9_-]{8,64}$/

/** The key of one object of a device. */
export function blobKey(tenant: string, device: string, id: string): string {
  if (!ID.test(id)) throw new TributaryError('BLOB_INVALID_KEY', 'a blob id is 8-64 of A-Z a-z 0-9 _ -')
  return `${devicePrefix(tenant, device)}${id}`
}

/** The prefix of every object of one device (ends with `/`). */
export function devicePrefix(tenant: string, device: string): string {
  return `${tenantPrefix(tenant)}${encodeURIComponent(assertDeviceId(device))}/`
}

/** The prefix of every object of one tenant (ends with `/`). */
export function tenantPrefix(tenant: string): string {
  return `${encodeURIComponent(assertTenantId(tenant))}/`
}

const safe = (segment: string): boolean => SEGMENT.test(segment) && segment !== '.' && segment !== '..'

/** Throws BLOB_INVALID_KEY unless `key` is `<tenant>/<device>/<id>` of safe segments; returns them. */
export function assertKey(key: string): [string, string, string] {
  const segments = key.split('/')
  if (segments.length !== 3 || !segments.every(safe)) {
    throw new TributaryError('BLOB_INVALID_KEY', `${JSON.stringify(key)} is not a blob key`)
  }
  return segments as [string, string, string]
}

/** Throws BLOB_INVALID_KEY unless `prefix` is `<tenant>/` or `<tenant>/<device>/`; returns its segments. */
export function assertPrefix(prefix: string): string[] {
  const segments = prefix.split('/')
  const last = segments.pop()
  if (last !== '' || segments.length < 1 || segments.length > 2 || !segments.every(safe)) {
    throw new TributaryError('BLOB_INVALID_KEY', `${JSON.stringify(prefix)} is not a blob key prefix`)
  }
  return segments
}
