// The Kafka the test setup provides (local Maven-resolved broker, container or KAFKA_BROKERS)
// works end to end: topic created through the admin API, a record produced with key and
// headers, read back by kcat — a client nobody here wrote.
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { promisify } from 'node:util'
import { Admin, Producer, stringSerializers } from '@platformatic/kafka'
import { afterAll, describe, expect, it } from 'vitest'
import { kafkaBrokers } from '../setup/kafka-env.ts'

const run = promisify(execFile)

describe('local Kafka for tests', () => {
  let admin: Admin | undefined
  const topics: string[] = []
  // Made on first use, so that without a broker each test fails with the reason (never skips).
  const adminClient = (): Admin =>
    (admin ??= new Admin({ clientId: 'kafka-int-test', bootstrapBrokers: kafkaBrokers().split(',') }))

  afterAll(async () => {
    if (topics.length > 0) await admin?.deleteTopics({ topics })
    await admin?.close()
  })

  it('keeps key, headers and value of a record as kcat reads them', async () => {
    const topic = `test.kafka-int.${randomUUID()}`
    topics.push(topic)
    await adminClient().createTopics({ topics: [topic], partitions: 1, replicas: 1 })

    const producer = new Producer({
      clientId: 'kafka-int-test',
      bootstrapBrokers: kafkaBrokers().split(','),
      serializers: stringSerializers,
    })
    try {
      const result = await producer.send({
        acks: -1,
        messages: [
          {
            topic,
            key: 'demo/device1',
            value: '{"temp":21.5}',
            headers: { ce_type: 'io.tributary.telemetry.v1', 'content-type': 'application/json' },
          },
        ],
      })
      expect(result.offsets?.[0]).toMatchObject({ topic, partition: 0, offset: 0n })
    } finally {
      await producer.close()
    }

    // -e exits at the end of the partition, -c 1 after one record: no waiting on our side.
    const { stdout } = await run(
      'kcat',
      ['-C', '-b', kafkaBrokers(), '-t', topic, '-o', 'beginning', '-c', '1', '-e', '-q', '-f', '%k|%h|%s\n'],
      { timeout: 30_000 },
    )
    expect(stdout).toBe(
      'demo/device1|ce_type=io.tributary.telemetry.v1,content-type=application/json|{"temp":21.5}\n',
    )
  })

  it('refuses to auto-create a topic that was never created', async () => {
    const topic = `test.kafka-int.missing.${randomUUID()}`
    const metadata = adminClient().metadata({ topics: [topic], autocreateTopics: true, retries: 0 })
    await expect(metadata).rejects.toThrow()
    expect(await adminClient().listTopics()).not.toContain(topic)
  })
})
