// Telemetry for a processor's ingress topic as a data engineer would produce it: CloudEvents in
// structured JSON mode (Kafka binding §3.3), one per line, through `kcat -P` with the partition
// key as the record key; and the ids that arrived on a topic, counted from `kcat -C -J`.
import { spawn } from 'node:child_process'
import { buildEvent, partitionKey } from '../../core/events/build.ts'
import { toJson } from '../../core/events/kafka-codec.ts'
import type { KafkaRecord } from './mqtt.ts'
import { readTopic } from './mqtt.ts'

export interface IngressEvent {
  readonly id: string
  readonly device: string
  readonly seq: number
  /** `<key>\t<structured JSON event>`, as `kcat -P -K '\t'` reads it. */
  readonly line: string
}

/** Events seq `from` .. `from + perDevice - 1` of every device, interleaved device by device. */
export function telemetryEvents(
  tenant: string,
  devices: readonly string[],
  perDevice: number,
  from = 0,
): IngressEvent[] {
  const events: IngressEvent[] = []
  for (let seq = from; seq < from + perDevice; seq++) {
    for (const device of devices) {
      const event = buildEvent({
        kind: 'telemetry',
        tenant,
        device,
        protocol: 'kafka',
        subject: 'load',
        data: Buffer.from(JSON.stringify({ seq })),
        datacontenttype: 'application/json',
      })
      const line = `${partitionKey(tenant, device)}\t${JSON.stringify(toJson(event))}`
      events.push({ id: event.attributes.id, device, seq, line })
    }
  }
  return events
}

/** Produces the events with one `kcat -P` run; resolves when kcat delivered them all and exited 0. */
export function produceWithKcat(
  brokers: string,
  topic: string,
  events: readonly IngressEvent[],
): Promise<void> {
  return new Promise((resolve, reject) => {
    const kcat = spawn(
      'kcat',
      [
        ...['-P', '-b', brokers, '-t', topic, '-K', '\\t'],
        ...['-H', 'content-type=application/cloudevents+json'],
        // Every record acknowledged by the broker before kcat exits 0.
        ...['-X', 'acks=all', '-X', 'message.timeout.ms=30000'],
      ],
      { stdio: ['pipe', 'ignore', 'pipe'] },
    )
    let stderr = ''
    kcat.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    kcat.once('error', reject)
    // 'close', not 'exit': output can still arrive after the exit.
    kcat.once('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`kcat -P exited ${String(code)}: ${stderr}`)),
    )
    kcat.stdin.end(events.map((e) => `${e.line}\n`).join(''))
  })
}

/** How often each CloudEvent id (header `ce_id`) occurs on a topic so far. */
export async function idCounts(
  brokers: string,
  topic: string,
  match: (record: KafkaRecord) => boolean = () => true,
): Promise<Map<string, number>> {
  const counts = new Map<string, number>()
  for (const record of await readTopic(brokers, topic)) {
    const id = record.headers['ce_id']
    if (id !== undefined && match(record)) counts.set(id, (counts.get(id) ?? 0) + 1)
  }
  return counts
}
