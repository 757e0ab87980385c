// The records every scenario sends: telemetry CloudEvents built by core/events and encoded in
// Kafka binary content mode (ce_ headers, partition key as the record key), with a 256-byte value.
import { partitionFor } from '../core/bus/partitioner.ts'
import { buildEvent } from '../core/events/build.ts'
import { encodeBinary } from '../core/events/kafka-codec.ts'

export const VALUE_BYTES = 256
/** Devices the records come from: their keys spread over the partitions. */
export const DEVICES = 64
/** Partitions of every benchmark topic (TRIBUTARY_TOPIC_PARTITIONS defaults to 6). */
export const PARTITIONS = 6
/** Distinct records built up front; runs cycle through them (building is not what we measure). */
export const POOL_SIZE = 1000

export interface BenchRecord {
  /** The partition key as a string (`bench/device-7`), what OutgoingRecord takes. */
  readonly key: string
  readonly keyBytes: Buffer
  readonly value: Buffer
  /** ce_* and content-type headers, as core/events/kafka-codec.ts encodes them. */
  readonly headers: ReadonlyMap<string, Buffer>
  /** The partition the bus would pick for this key on a PARTITIONS-partition topic. */
  readonly partition: number
}

/** `count` records from DEVICES devices; values differ, so nothing compresses or dedupes by accident. */
export function buildRecords(count = POOL_SIZE): BenchRecord[] {
  const records: BenchRecord[] = []
  for (let i = 0; i < count; i++) {
    const data = Buffer.alloc(VALUE_BYTES)
    for (let j = 0; j < VALUE_BYTES; j++) data[j] = (i * 31 + j * 7) & 0xff
    const event = buildEvent({
      kind: 'telemetry',
      tenant: 'bench',
      device: `device-${i % DEVICES}`,
      protocol: 'mqtt',
      subject: 'sensors/temperature',
      data,
      datacontenttype: 'application/octet-stream',
    })
    const { key, value, headers } = encodeBinary(event)
    if (key === undefined || value?.length !== VALUE_BYTES) {
      throw new Error('the CloudEvent codec produced no key or a value of the wrong size')
    }
    const keyString = key.toString()
    records.push({
      key: keyString,
      keyBytes: key,
      value,
      headers,
      partition: partitionFor(keyString, PARTITIONS),
    })
  }
  return records
}

/** Bytes of headers per record (names and values), for the record-size note in the results. */
export function headerBytes(record: BenchRecord): number {
  let total = 0
  for (const [name, value] of record.headers) total += Buffer.byteLength(name) + value.length
  return total
}

let counter = 0

/** A topic or group name no earlier run used: `bench.<what>.<time>.<n>`. */
export function uniqueName(what: string): string {
  counter++
  return `bench.${what}.${Date.now().toString(36)}.${process.pid}.${counter}`
}
