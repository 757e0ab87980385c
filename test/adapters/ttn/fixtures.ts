// The TTN v3 webhook fixtures (test/fixtures/ttn-v3.*.json, written from The Things Stack's data
// format documentation), loaded fresh for each use so a test may change its copy.
import { readFileSync } from 'node:fs'

export const FIXTURES = [
  'uplink',
  'uplink-empty-fields',
  'join-accept',
  'downlink-ack',
  'downlink-nack',
  'downlink-sent',
  'downlink-failed',
  'downlink-queued',
  'location-solved',
] as const

export type FixtureName = (typeof FIXTURES)[number]

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read and change fields freely
export type Fixture = Record<string, any>

export function fixture(name: FixtureName): Fixture {
  return JSON.parse(
    readFileSync(new URL(`../../fixtures/ttn-v3.${name}.json`, import.meta.url), 'utf8'),
  ) as Fixture
}

/** The fixture as TTN would send it for another device. */
export function fixtureFor(name: FixtureName, device: string): Fixture {
  const body = fixture(name)
  body['end_device_ids'].device_id = device
  return body
}

/** The event type each fixture becomes. */
export const TYPES: Record<FixtureName, string> = {
  uplink: 'io.tributary.telemetry.v1',
  'uplink-empty-fields': 'io.tributary.telemetry.v1',
  'join-accept': 'io.tributary.ttn.join.v1',
  'downlink-ack': 'io.tributary.ttn.downlink.ack.v1',
  'downlink-nack': 'io.tributary.ttn.downlink.nack.v1',
  'downlink-sent': 'io.tributary.ttn.downlink.sent.v1',
  'downlink-failed': 'io.tributary.ttn.downlink.failed.v1',
  'downlink-queued': 'io.tributary.ttn.downlink.queued.v1',
  'location-solved': 'io.tributary.ttn.location.v1',
}
