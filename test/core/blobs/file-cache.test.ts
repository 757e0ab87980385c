// The file metadata cache when the cluster state fails: lookups read the registry instead, and
// writes through the cache still reach the registry.
import { describe, expect, it } from 'vitest'
import { createFileLookups } from '../../../core/blobs/file-cache.ts'
import { TributaryError } from '../../../core/errors.ts'
import { silentLogger } from '../../../core/log.ts'
import { sampleFile } from './file-fixtures.ts'

const file = sampleFile

describe('file metadata cache with the cluster state down', () => {
  const down = async (): Promise<never> => {
    throw new TributaryError('CLUSTER_UNAVAILABLE', 'Redis is unreachable')
  }
  const published: string[] = []
  const lookups = createFileLookups({
    store: {
      get: async (_tenant, id) => (id === file.id ? file : undefined),
      publications: async () => ({ devices: [], folders: [...published] }),
      publish: async (_t, _id, target) => {
        if ('folder' in target) published.push(target.folder)
        return true
      },
      unpublish: async () => false,
      remove: async () => file,
    },
    cluster: { getValue: down, setValue: down, deleteValue: down },
    ttlMs: 1000,
    metrics: undefined,
    log: silentLogger,
  })

  it('reads the registry', async () => {
    expect(await lookups.lookup('acme', file.id)).toEqual({
      file,
      publications: { devices: [], folders: [] },
    })
    expect(await lookups.lookup('acme', 'other-file')).toBeUndefined()
  })

  it('still writes to the registry', async () => {
    expect(await lookups.publish('acme', file.id, { folder: 'firmware' }, new Date())).toBe(true)
    expect((await lookups.lookup('acme', file.id))?.publications.folders).toEqual(['firmware'])
    expect(await lookups.remove('acme', file.id)).toBe(file)
  })
})
