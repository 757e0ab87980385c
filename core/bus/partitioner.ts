// Key → partition exactly as Kafka's Java client does it (murmur2, sign bit masked), so a record
// lands in the same partition whichever bus or client wrote it.

const M = 0x5bd1e995
const SEED = 0x9747b28c

/** Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), as a signed 32-bit integer. */
export function murmur2(data: Uint8Array): number {
  const length = data.length
  let h = SEED ^ length
  const end = length - (length % 4)
  for (let i = 0; i < end; i += 4) {
    let k =
      (data[i]! & 0xff) |
      ((data[i + 1]! & 0xff) << 8) |
      ((data[i + 2]! & 0xff) << 16) |
      ((data[i + 3]! & 0xff) << 24)
    k = Math.imul(k, M)
    k ^= k >>> 24
    k = Math.imul(k, M)
    h = Math.imul(h, M)
    h ^= k
  }
  const rest = length % 4
  if (rest === 3) h ^= (data[end + 2]! & 0xff) << 16
  if (rest >= 2) h ^= (data[end + 1]! & 0xff) << 8
  if (rest >= 1) {
    h ^= data[end]! & 0xff
    h = Math.imul(h, M)
  }
  h ^= h >>> 13
  h = Math.imul(h, M)
  h ^= h >>> 15
  return h | 0
}

let roundRobin = 0

/** The partition of a key among `partitions`; keyless records rotate. */
export function partitionFor(key: string | undefined, partitions: number): number {
  if (key === undefined) {
    roundRobin = (roundRobin + 1) % 0x7fffffff
    return roundRobin % partitions
  }
  return (murmur2(Buffer.from(key)) & 0x7fffffff) % partitions
}
