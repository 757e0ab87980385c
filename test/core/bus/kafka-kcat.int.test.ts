// What a data engineer sees: a CloudEvent published through the Kafka bus, read back with kcat (a
// client nobody here wrote) in Kafka binary content mode — key, ce_ headers and data as the value.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import type { EventBus } from '../../../core/bus/bus.ts'
import { createKafkaBus } from '../../../core/bus/kafka.ts'
import { buildEvent } from '../../../core/events/build.ts'
import { encodeBinary } from '../../../core/events/kafka-codec.ts'
import { uniqueName } from '../../helpers/wait.ts'
import { kafkaBrokers } from '../../setup/kafka-env.ts'

const run = promisify(execFile)

/** kcat's %h: `name=value` pairs separated by commas (our header values hold no comma). */
function parseHeaders(line: string): Map<string, string> {
  return new Map(
    line.split(',').map((pair) => {
      const at = pair.indexOf('=')
      return [pair.slice(0, at), pair.slice(at + 1)] as const
    }),
  )
}

describe('Kafka bus as kcat sees it', () => {
  let bus: EventBus | undefined
  const topics: string[] = []

  afterAll(async () => {
    if (topics.length > 0) await bus?.admin.deleteTopics(topics)
    await bus?.close()
  })

  it('writes a CloudEvent in binary mode: key <tenant>/<device>, ce_ headers, data as the value', async () => {
    bus = await createKafkaBus({ brokers: kafkaBrokers().split(','), clientId: 'tributary-kcat-test' })
    const topic = uniqueName('kcat')
    topics.push(topic)
    await bus.admin.createTopics([{ name: topic, partitions: 3 }])

    const data = '{"celsius":21.5}'
    const event = buildEvent({
      kind: 'telemetry',
      tenant: 'acme',
      device: 'boiler-7',
      protocol: 'mqtt',
      subject: 'temperature',
      data: Buffer.from(data),
      datacontenttype: 'application/json',
    })
    const { key, value, headers } = encodeBinary(event)
    await bus.publish([{ topic, key: key?.toString(), value, headers }])

    // -e exits at the end of the partitions, -c 1 after one record: no waiting on our side.
    const { stdout } = await run(
      'kcat',
      [
        '-C',
        '-b',
        kafkaBrokers(),
        '-t',
        topic,
        '-o',
        'beginning',
        '-c',
        '1',
        '-e',
        '-q',
        '-f',
        '%k\n%h\n%s\n',
      ],
      { timeout: 30_000 },
    )
    const [seenKey, seenHeaders, seenValue] = stdout.split('\n')
    expect(seenKey).toBe('acme/boiler-7')
    const seen = parseHeaders(seenHeaders!)
    expect(Object.fromEntries(seen)).toMatchObject({
      ce_id: event.attributes.id,
      ce_source: 'tributary://acme/boiler-7',
      ce_type: 'io.tributary.telemetry.v1',
      ce_specversion: '1.0',
      ce_tenant: 'acme',
      'content-type': 'application/json',
    })
    // partitionkey travels as the record key, not as a header (Kafka binding §3.1).
    expect(seen.has('ce_partitionkey')).toBe(false)
    expect(seenValue).toBe(data)
  })
})
