// The KRaft cluster id given to `kafka-storage format`: never one the tool's argument parser takes
// for an option (a random id started with '-' one time in 64 and the broker did not start). The
// redraw itself is opaqueId's (test/core/events/ids.test.ts); this checks the broker uses it.
import { expect, it } from 'vitest'
import { kraftClusterId } from '../../scripts/kafka/broker.ts'

it('passes its random source to opaqueId, which draws again past a leading "-"', () => {
  const draws = [Buffer.alloc(16, 0xf8), Buffer.alloc(16, 0x01)]
  expect(kraftClusterId(() => draws.shift()!)).toBe(Buffer.alloc(16, 0x01).toString('base64url'))
  expect(draws).toEqual([])
})

it('gives 22 URL-safe characters, as Kafka Uuid.toString does', () => {
  for (let i = 0; i < 200; i++) expect(kraftClusterId()).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/)
})
