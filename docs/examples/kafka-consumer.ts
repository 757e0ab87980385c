// Reading a tenant's events straight from Kafka with @platformatic/kafka: a consumer group on
// `tributary.events.<tenant>`, CloudEvents in Kafka binary mode (ce_ headers, the data as the value).
//
//   KAFKA_BROKERS=127.0.0.1:19092 TENANT=demo node docs/examples/kafka-consumer.ts
//
// Commits after each record is handled: at-least-once, so deduplicate on `id` if that matters.
import { Consumer, stringDeserializers } from '@platformatic/kafka'

const brokers = (process.env['KAFKA_BROKERS'] ?? '127.0.0.1:19092').split(',')
const prefix = process.env['TOPIC_PREFIX'] ?? 'tributary'
const tenant = process.env['TENANT'] ?? 'demo'
// Stop after this many events (0: run until interrupted).
const limit = Number(process.env['LIMIT'] ?? '0')

const consumer = new Consumer({
  clientId: 'tributary-example',
  groupId: process.env['GROUP'] ?? `${tenant}-example`,
  bootstrapBrokers: brokers,
  deserializers: stringDeserializers,
})

const stream = await consumer.consume({
  topics: [`${prefix}.events.${tenant}`],
  // A new group starts at the oldest retained event; a known group where it committed.
  mode: 'committed',
  fallbackMode: 'earliest',
  autocommit: false,
})

let seen = 0
for await (const message of stream) {
  const ce = (name: string): string | undefined => message.headers.get(`ce_${name}`)
  // type is io.tributary.telemetry.v1, .connection.v1, .registry.v1 ... (README: Topics and events)
  process.stdout.write(
    `${JSON.stringify({
      id: ce('id'),
      type: ce('type'),
      device: ce('device'),
      channel: ce('subject'),
      time: ce('time'),
      contentType: message.headers.get('content-type'),
      data: message.value,
    })}\n`,
  )
  await message.commit()
  if (limit > 0 && ++seen >= limit) break
}
await stream.close()
await consumer.close()
