// An uploaded file's metadata, for unit tests of what reads it.
import type { FileRecord } from '../../../core/registry/files.ts'

export const sampleFile: FileRecord = {
  tenant: 'acme',
  id: 'file-0001',
  device: 'src',
  name: 'fw.bin',
  size: 3,
  sha256: 'ab'.repeat(32),
  contentType: 'application/octet-stream',
  state: 'uploaded',
  createdAt: new Date('2026-05-01T10:00:00Z'),
  uploadedAt: new Date('2026-05-01T10:00:01Z'),
  expiresAt: undefined,
}
