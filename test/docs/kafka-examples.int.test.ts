// The README's "Kafka direct" examples work as printed: the TypeScript consumer in
// docs/examples/kafka-consumer.ts and the kcat command read a tenant topic's CloudEvents.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { EventBus } from '../../core/bus/bus.ts'
import { createKafkaBus } from '../../core/bus/kafka.ts'
import { buildEvent } from '../../core/events/build.ts'
import type { CloudEvent } from '../../core/events/cloudevent.ts'
import { encodeBinary } from '../../core/events/kafka-codec.ts'
import { topicNames } from '../../core/events/topics.ts'
import { uniqueName } from '../helpers/wait.ts'
import { kafkaBrokers } from '../setup/kafka-env.ts'

const EXAMPLE = fileURLToPath(new URL('../../docs/examples/kafka-consumer.ts', import.meta.url))
const prefix = uniqueName('docs_kafka').replaceAll('-', '_')
const topics = topicNames(prefix)
const tenant = 'demo'
let bus: EventBus
let sent: CloudEvent[] = []

function run(file: string, args: readonly string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(file, args, { timeout: 60_000, env: { ...process.env, ...env } }, (err, stdout, stderr) =>
      err === null ? resolve(stdout) : reject(new Error(`${file} failed: ${stderr}`, { cause: err })),
    ),
  )
}

beforeAll(async () => {
  bus = await createKafkaBus({ brokers: kafkaBrokers().split(',') })
  await bus.admin.createTopics([{ name: topics.events(tenant), partitions: 2 }])
  sent = ['{"t":21.5}', '{"t":22}'].map((data) =>
    buildEvent({
      kind: 'telemetry',
      tenant,
      device: 'device1',
      protocol: 'mqtt',
      subject: 'sensors/temp',
      data: Buffer.from(data),
      datacontenttype: 'application/json',
    }),
  )
  await bus.publish(
    sent.map((e) => {
      const { key, value, headers } = encodeBinary(e)
      return { topic: topics.events(tenant), key: key?.toString(), value, headers }
    }),
  )
})

afterAll(async () => {
  await bus?.admin.deleteTopics([topics.events(tenant)])
  await bus?.close()
})

describe('Kafka direct examples', () => {
  it('docs/examples/kafka-consumer.ts prints each event of the tenant topic', async () => {
    const out = await run(process.execPath, [EXAMPLE], {
      KAFKA_BROKERS: kafkaBrokers(),
      TOPIC_PREFIX: prefix,
      TENANT: tenant,
      LIMIT: '2',
      GROUP: uniqueName('docs-example'),
    })
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, string>)
    expect(lines).toEqual(
      sent.map((e) => ({
        id: e.attributes.id,
        type: 'io.tributary.telemetry.v1',
        device: 'device1',
        channel: 'sensors/temp',
        time: e.attributes.time,
        contentType: 'application/json',
        data: e.data?.toString(),
      })),
    )
  })

  it('the README’s kcat command prints the type, device and data of each event', async () => {
    const out = await run('kcat', [
      '-b',
      kafkaBrokers(),
      '-C',
      '-t',
      topics.events(tenant),
      '-o',
      'beginning',
      '-e',
      '-q',
      '-f',
      '%k %h %s\\n',
    ])
    const lines = out.trim().split('\n')
    expect(lines).toHaveLength(2)
    for (const line of lines) {
      expect(line).toMatch(/^demo\/device1 .*ce_type=io\.tributary\.telemetry\.v1/)
      expect(line).toMatch(/ \{"t":2[12](\.5)?\}$/)
    }
  })
})
