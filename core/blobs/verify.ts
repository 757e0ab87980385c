// The check every put streams through: counts and hashes the bytes, refuses a body longer than
// declared as soon as it passes the length, and holds back the last chunk until the end has been
// checked, so that the store never receives a complete body that fails the length or SHA-256 check
// (an S3 PUT with a short body never completes, so nothing is stored).
import { createHash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { TributaryError } from '../errors.ts'

export const SHA256_HEX = /^[0-9a-f]{64}$/

export interface Verifier extends Transform {
  /** Lowercase hex SHA-256 of what passed, once the stream has finished. */
  readonly sha256: string
}

export function checkDeclared(size: number, sha256: string | undefined): void {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new TributaryError('BLOB_INTEGRITY', 'the declared size must be a non-negative integer')
  }
  if (sha256 !== undefined && !SHA256_HEX.test(sha256)) {
    throw new TributaryError('BLOB_INTEGRITY', 'the declared sha256 must be 64 lowercase hex digits')
  }
}

export function createVerifier(size: number, sha256: string | undefined): Verifier {
  checkDeclared(size, sha256)
  const hash = createHash('sha256')
  let received = 0
  let held: Buffer | undefined
  let digest = ''
  const verifier = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      received += chunk.length
      if (received > size) {
        callback(new TributaryError('BLOB_INTEGRITY', `the body is longer than the declared ${size} bytes`))
        return
      }
      hash.update(chunk)
      const previous = held
      held = chunk
      callback(null, previous)
    },
    flush(callback: TransformCallback) {
      if (received !== size) {
        callback(
          new TributaryError('BLOB_INTEGRITY', `the body has ${received} bytes, not the declared ${size}`),
        )
        return
      }
      digest = hash.digest('hex')
      if (sha256 !== undefined && digest !== sha256) {
        callback(new TributaryError('BLOB_INTEGRITY', 'the body does not match the declared sha256'))
        return
      }
      callback(null, held)
    },
  })
  return Object.defineProperty(verifier, 'sha256', { get: () => digest }) as Verifier
}
