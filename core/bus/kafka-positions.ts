// Where a Kafka subscription reads each partition from: the group's committed offsets, or a
// StartPosition resolved with ListOffsets (earliest, latest, by timestamp, or given offsets).
import type { Consumer } from '@platformatic/kafka'
import { ListOffsetTimestamps } from '@platformatic/kafka'
import type { StartPosition } from './bus.ts'

type KafkaConsumer = Consumer<Buffer, Buffer, Buffer, Buffer>

async function listOffsets(
  consumer: KafkaConsumer,
  topic: string,
  partitions: readonly number[],
  timestamp: bigint,
): Promise<Map<number, number>> {
  const listed = await consumer.listOffsets({
    topics: [topic],
    partitions: { [topic]: [...partitions] },
    timestamp,
  })
  const offsets = listed.get(topic) ?? []
  const result = new Map<number, number>()
  for (const p of partitions) {
    const offset = offsets[p]
    if (offset !== undefined) result.set(p, Number(offset))
  }
  return result
}

/** The group's committed offsets of `partitions`, leaving out those it never committed. */
export async function committedOffsets(
  consumer: KafkaConsumer,
  topic: string,
  partitions: readonly number[],
): Promise<Map<number, number>> {
  const committed = await consumer.listCommittedOffsets({ topics: [{ topic, partitions: [...partitions] }] })
  const offsets = committed.get(topic) ?? []
  const result = new Map<number, number>()
  for (const p of partitions) {
    const offset = offsets[p]
    if (offset !== undefined && offset >= 0n) result.set(p, Number(offset))
  }
  return result
}

/** Resolves `position` for each partition, as the embedded bus does (see embedded/subscription.ts). */
export async function resolvePositions(
  consumer: KafkaConsumer,
  topic: string,
  partitions: readonly number[],
  position: StartPosition,
): Promise<Map<number, number>> {
  if (position === 'earliest') return listOffsets(consumer, topic, partitions, ListOffsetTimestamps.EARLIEST)
  const latest = await listOffsets(consumer, topic, partitions, ListOffsetTimestamps.LATEST)
  if (position === 'latest') return latest
  if ('time' in position) {
    // ListOffsets answers -1 when no record is that recent: start at the end then.
    const byTime = await listOffsets(
      consumer,
      topic,
      partitions,
      BigInt(Math.max(0, Math.trunc(position.time))),
    )
    return new Map(partitions.map((p) => [p, byTime.get(p)! >= 0 ? byTime.get(p)! : latest.get(p)!]))
  }
  const earliest = await listOffsets(consumer, topic, partitions, ListOffsetTimestamps.EARLIEST)
  return new Map(
    partitions.map((p) => {
      const given = position.offsets.find((o) => o.topic === topic && o.partition === p)
      const end = latest.get(p)!
      return [p, given === undefined ? end : Math.max(earliest.get(p)!, Math.min(given.offset, end))]
    }),
  )
}

/** Where to continue after OFFSET_OUT_OF_RANGE: the log start if retention passed us, else the end. */
export async function outOfRangePosition(
  consumer: KafkaConsumer,
  topic: string,
  partition: number,
  requested: number,
): Promise<number> {
  const earliest = (await listOffsets(consumer, topic, [partition], ListOffsetTimestamps.EARLIEST)).get(
    partition,
  )
  if (earliest !== undefined && requested < earliest) return earliest
  return (
    (await listOffsets(consumer, topic, [partition], ListOffsetTimestamps.LATEST)).get(partition) ?? requested
  )
}
