// Standard Webhooks signing (standardwebhooks.com, spec "Signature scheme"): HMAC-SHA256 of
// `<id>.<timestamp>.<body>` with the secret's key, sent as `v1,<base64>` beside the id and time.
import { createHmac } from 'node:crypto'

const SECRET_PREFIX = 'whsec_'
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/

/** The key bytes of a `whsec_<base64>` secret; throws RangeError for anything else. */
export function secretKey(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret
  // The spec allows 24-64 bytes of key; we refuse shorter keys than that rather than sign weakly.
  const key = BASE64.test(encoded) ? Buffer.from(encoded, 'base64') : Buffer.alloc(0)
  if (key.length < 24 || key.length > 64)
    throw new RangeError('a webhook secret must be whsec_ and 24-64 bytes of base64')
  return key
}

export interface SignatureHeaders {
  readonly 'webhook-id': string
  readonly 'webhook-timestamp': string
  readonly 'webhook-signature': string
}

/** The three Standard Webhooks headers for one request body; `timestampMs` is the send time. */
export function sign(key: Buffer, id: string, timestampMs: number, body: Buffer): SignatureHeaders {
  const timestamp = String(Math.floor(timestampMs / 1000))
  const signature = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64')
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}` }
}
