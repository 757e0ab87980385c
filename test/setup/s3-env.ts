// The S3-compatible server that test/setup/services.ts provided, or a failure that says why there
// is none (a test that needs S3 fails loudly, it never skips).
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3'
import { inject } from 'vitest'
import { uniqueName } from '../helpers/wait.ts'

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

/** A new bucket on the test S3, the client that made it, and the TRIBUTARY_S3_* of a process using it. */
export async function testBucket(): Promise<{
  bucket: string
  client: S3Client
  env: Record<string, string>
}> {
  const server = testS3()
  const bucket = uniqueName('files').toLowerCase().slice(0, 60)
  const client = new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    forcePathStyle: true,
  })
  await client.send(new CreateBucketCommand({ Bucket: bucket }))
  const env = {
    TRIBUTARY_S3_ENDPOINT: server.endpoint,
    TRIBUTARY_S3_BUCKET: bucket,
    TRIBUTARY_S3_REGION: server.region,
    TRIBUTARY_S3_ACCESS_KEY_ID: server.accessKeyId,
    TRIBUTARY_S3_SECRET_ACCESS_KEY: server.secretAccessKey,
    TRIBUTARY_S3_FORCE_PATH_STYLE: 'true',
  }
  return { bucket, client, env }
}
