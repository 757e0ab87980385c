// Reads dead letters back from the dead-letter topic by (partition, offset), for re-drive: a
// throwaway reader (no commits) from the lowest wanted offset of each partition, closed once every
// wanted record was seen or a bound passes. Positions the topic no longer holds are reported gone.
import { randomUUID } from 'node:crypto'
import type { BusMessage, EventBus } from '../../core/bus/bus.ts'
import type { DeadLetterRecords, RecordPosition } from './ports.ts'
import { positionKey } from './ports.ts'

export interface BusRecordsOptions {
  /** `<prefix>.deadletter`. */
  readonly topic: string
  /** Prefix of the throwaway reader's group; a random suffix makes each read its own. */
  readonly groupPrefix: string
  /** How long one read may take before the records not yet seen count as unread (default 30 s). */
  readonly timeoutMs?: number | undefined
}

export function busDeadLetterRecords(
  bus: Pick<EventBus, 'subscribe' | 'admin'>,
  options: BusRecordsOptions,
): DeadLetterRecords {
  const timeoutMs = options.timeoutMs ?? 30_000
  return {
    async read(positions: readonly RecordPosition[]) {
      const found = new Map<string, BusMessage>()
      const gone = new Set<string>()
      const ranges = new Map((await bus.admin.offsets(options.topic)).map((r) => [r.partition, r]))
      const wanted = new Set<string>()
      const starts = new Map<number, number>()
      for (const p of positions) {
        const range = ranges.get(p.partition)
        // Kafka binding: offsets below `earliest` were deleted by retention; at or past `next` never existed.
        if (range === undefined || p.offset < range.earliest || p.offset >= range.next) {
          gone.add(positionKey(p))
          continue
        }
        wanted.add(positionKey(p))
        starts.set(p.partition, Math.min(starts.get(p.partition) ?? p.offset, p.offset))
      }
      if (wanted.size === 0) return { found, gone }

      const all = Promise.withResolvers<void>()
      const reader = await bus.subscribe({
        group: `${options.groupPrefix}-${randomUUID()}`,
        topics: [options.topic],
        // Partitions without a wanted letter start at the end: nothing of theirs is read.
        from: {
          offsets: [...ranges.keys()].map((partition) => ({
            topic: options.topic,
            partition,
            offset: starts.get(partition) ?? ranges.get(partition)!.next,
          })),
        },
        commit: false,
        maxBatch: 500,
        handler: async (batch) => {
          for (const message of batch) {
            const key = positionKey(message)
            if (wanted.delete(key)) found.set(key, message)
          }
          if (wanted.size === 0) all.resolve()
        },
      })
      const timer = setTimeout(() => all.resolve(), timeoutMs)
      try {
        await all.promise
      } finally {
        clearTimeout(timer)
        await reader.close()
      }
      return { found, gone }
    },
  }
}
