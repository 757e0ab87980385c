// Keys land in the partition Kafka's Java client would pick; kafkajs's Java-compatible
// partitioner is the independent reference.
import { Partitioners } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { partitionFor } from '../../../core/bus/partitioner.ts'

describe('partitionFor', () => {
  it('matches the Java client for many keys and partition counts', () => {
    const reference = Partitioners.JavaCompatiblePartitioner()
    for (const partitions of [1, 3, 6, 12, 100]) {
      const partitionMetadata = Array.from({ length: partitions }, (_, i) => ({ partitionId: i, leader: 0 }))
      for (let i = 0; i < 500; i++) {
        const key = `acme/device-${i}${'x'.repeat(i % 7)}`
        const expected = reference({ topic: 't', partitionMetadata, message: { key, value: null } } as never)
        expect(partitionFor(key, partitions)).toBe(expected)
      }
    }
  })

  it('spreads keyless records over every partition', () => {
    const seen = new Set(Array.from({ length: 12 }, () => partitionFor(undefined, 4)))
    expect(seen).toEqual(new Set([0, 1, 2, 3]))
  })
})
