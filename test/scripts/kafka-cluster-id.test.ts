// The KRaft cluster id given to `kafka-storage format`: never one the tool's argument parser takes
// for an option. A random id started with '-' one time in 64 and the broker did not start.
import { expect, it } from 'vitest'
import { kraftClusterId } from '../../scripts/kafka/broker.ts'

it('draws again when the id would start with "-", which kafka-storage reads as an option', () => {
  // 0xf8 = 0b111110.. encodes to '-' as the first base64url character.
  const draws = [Buffer.alloc(16, 0xf8), Buffer.alloc(16, 0x01)]
  const random = (size: number): Buffer => {
    const next = draws.shift()
    if (next === undefined || next.length !== size) throw new Error('unexpected draw')
    return next
  }
  expect(Buffer.alloc(16, 0xf8).toString('base64url').startsWith('-')).toBe(true)
  const id = kraftClusterId(random)
  expect(id).toBe(Buffer.alloc(16, 0x01).toString('base64url'))
  expect(draws).toEqual([])
})

it('gives 22 URL-safe characters, as Kafka Uuid.toString does', () => {
  for (let i = 0; i < 200; i++) {
    const id = kraftClusterId()
    expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/)
  }
})
