// The S3-compatible server that test/setup/services.ts provided, or a failure that says why there
// is none (a test that needs S3 fails loudly, it never skips).
import { inject } from 'vitest'

export interface TestS3 {
  readonly endpoint: string
  readonly region: string
  readonly accessKeyId: string
  readonly secretAccessKey: string
}

export function testS3(): TestS3 {
  const endpoint = inject('s3Endpoint')
  if (!endpoint) throw new Error(`no S3 for this run: ${inject('s3Problem') || 'services setup did not run'}`)
  return {
    endpoint,
    region: inject('s3Region'),
    accessKeyId: inject('s3AccessKeyId'),
    secretAccessKey: inject('s3SecretAccessKey'),
  }
}
