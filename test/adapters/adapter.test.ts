// The default ingest of the adapter seam, with a double of the EventBus port: what record a device
// message, a connection change and any other event become, and the outcome for each way the bus
// can answer.
import { describe, expect, it } from 'vitest'
import { createIngest } from '../../adapters/adapter.ts'
import type { DeviceMessage } from '../../adapters/adapter.ts'
import type { EventBus, OutgoingRecord } from '../../core/bus/bus.ts'
import { TributaryError } from '../../core/errors.ts'
import { decode } from '../../core/events/kafka-codec.ts'
import { topicNames } from '../../core/events/topics.ts'
import { silentLogger } from '../../core/log.ts'

function busDouble(answer: () => Promise<void> = async () => {}) {
  const records: OutgoingRecord[] = []
  const bus: Pick<EventBus, 'publish'> = {
    async publish(batch) {
      await answer()
      records.push(...batch)
      return batch.map((r, i) => ({ topic: r.topic, partition: 0, offset: i }))
    },
  }
  return { bus, records }
}

const message: DeviceMessage = {
  tenant: 'acme',
  device: 'child-1',
  sender: 'gw-1',
  protocol: 'mqtt',
  channel: 'sensors/t',
  payload: Buffer.from('21.5'),
  contentType: 'text/plain',
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  time: new Date('2026-05-01T12:00:00Z'),
}
const topics = topicNames('test')

describe('createIngest', () => {
  it('publishes a telemetry CloudEvent in binary mode to the ingress topic, keyed by device', async () => {
    const { bus, records } = busDouble()
    expect(await createIngest({ bus, topics, log: silentLogger }).publish(message)).toEqual({
      kind: 'accepted',
    })
    expect(records).toHaveLength(1)
    const [record] = records
    expect(record).toMatchObject({ topic: 'test.ingress', key: 'acme/child-1', value: Buffer.from('21.5') })
    const event = decode({ key: Buffer.from(record!.key!), value: record!.value, headers: record!.headers! })
    expect(event.attributes).toMatchObject({
      type: 'io.tributary.telemetry.v1',
      source: 'tributary://acme/child-1',
      subject: 'sensors/t',
      time: '2026-05-01T12:00:00.000Z',
      datacontenttype: 'text/plain',
      tenant: 'acme',
      device: 'child-1',
      sender: 'gw-1',
      protocol: 'mqtt',
      traceparent: message.traceparent,
    })
  })

  it('publishes a connection change as JSON data', async () => {
    const { bus, records } = busDouble()
    const ingest = createIngest({ bus, topics, log: silentLogger })
    const outcome = await ingest.connection({
      tenant: 'acme',
      device: 'd1',
      protocol: 'mqtt',
      status: 'disconnected',
      listener: 'mqtts',
      reason: 'takeover',
      remote: '10.0.0.1:5555',
    })
    expect(outcome).toEqual({ kind: 'accepted' })
    const event = decode({
      key: Buffer.from(records[0]!.key!),
      value: records[0]!.value,
      headers: records[0]!.headers!,
    })
    expect(event.attributes).toMatchObject({
      type: 'io.tributary.connection.v1',
      datacontenttype: 'application/json',
    })
    expect(JSON.parse(event.data!.toString())).toEqual({
      status: 'disconnected',
      listener: 'mqtts',
      reason: 'takeover',
      remote: '10.0.0.1:5555',
    })
  })

  it('publishes any other event a device causes as given, extension attributes included', async () => {
    const { bus, records } = busDouble()
    const ingest = createIngest({ bus, topics, log: silentLogger })
    const outcome = await ingest.event({
      kind: 'ttn.join',
      tenant: 'acme',
      device: 'node-1',
      protocol: 'ttn',
      data: Buffer.from('{}'),
      datacontenttype: 'application/json',
      extensions: { deveui: '70b3d57ed0000001', ttnapp: 'farm' },
    })
    expect(outcome).toEqual({ kind: 'accepted' })
    expect(records).toMatchObject([{ topic: 'test.ingress', key: 'acme/node-1' }])
    const event = decode({
      key: Buffer.from(records[0]!.key!),
      value: records[0]!.value,
      headers: records[0]!.headers!,
    })
    expect(event.attributes).toMatchObject({
      type: 'io.tributary.ttn.join.v1',
      protocol: 'ttn',
      deveui: '70b3d57ed0000001',
      ttnapp: 'farm',
    })
    // An extension that would shadow an attribute Tributary sets is refused before the bus.
    expect(
      await ingest.event({
        kind: 'ttn.join',
        tenant: 'acme',
        device: 'node-1',
        protocol: 'ttn',
        extensions: { tenant: 'x' },
      }),
    ).toMatchObject({ kind: 'rejected', reason: 'invalid' })
    expect(records).toHaveLength(1)
  })

  it('rejects what cannot be an event without touching the bus', async () => {
    const { bus, records } = busDouble()
    const ingest = createIngest({ bus, topics, log: silentLogger })
    expect(await ingest.publish({ ...message, device: 'bad device' })).toMatchObject({
      kind: 'rejected',
      reason: 'invalid',
    })
    expect(await ingest.publish({ ...message, channel: 'a//b' })).toMatchObject({
      kind: 'rejected',
      reason: 'invalid',
    })
    expect(records).toEqual([])
  })

  it.each([
    [
      new TributaryError('BUS_UNAVAILABLE', 'brokers down'),
      { kind: 'unavailable', detail: 'brokers down', code: 'BUS_UNAVAILABLE' },
    ],
    [
      new TributaryError('BUS_UNAVAILABLE', 'known down', { details: { retryAfterMs: 2_000 } }),
      { kind: 'unavailable', detail: 'known down', code: 'BUS_UNAVAILABLE', retryAfterMs: 2_000 },
    ],
    [
      new TributaryError('BUS_CLOSED', 'closing'),
      { kind: 'unavailable', detail: 'closing', code: 'BUS_CLOSED' },
    ],
    [
      new TributaryError('BUS_RECORD_TOO_LARGE', 'too big'),
      { kind: 'rejected', reason: 'too-large', detail: 'too big' },
    ],
    [new Error('a bug'), { kind: 'unavailable', detail: 'the event bus failed' }],
  ])('turns a failed publish (%s) into an outcome, never a rejection', async (err, outcome) => {
    const { bus } = busDouble(async () => {
      throw err
    })
    expect(await createIngest({ bus, topics, log: silentLogger }).publish(message)).toEqual(outcome)
  })
})
