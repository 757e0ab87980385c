// In-process group coordinator of the embedded log: members of a group split the partitions of
// their topics; on every join or leave the group rebalances, releasing partitions (after their
// in-flight batches) before anyone else acquires them. Rebalances of one group never overlap.
import type { Member } from './subscription.ts'
import { partitionKeyOf } from './subscription.ts'
import type { TopicStore } from './topics.ts'

interface Group {
  readonly members: Member[]
  chain: Promise<void>
}

export class GroupCoordinator {
  readonly #topics: TopicStore
  readonly #groups = new Map<string, Group>()

  constructor(topics: TopicStore) {
    this.#topics = topics
  }

  join(member: Member): Promise<void> {
    const group = this.#group(member.group)
    group.members.push(member)
    return this.#rebalance(member.group)
  }

  leave(member: Member): Promise<void> {
    const group = this.#groups.get(member.group)
    if (group === undefined) return Promise.resolve()
    const i = group.members.indexOf(member)
    if (i >= 0) group.members.splice(i, 1)
    return this.#rebalance(member.group, member)
  }

  /** Rebalances every group that reads `topic` (after it was deleted). */
  async topicRemoved(topic: string): Promise<void> {
    const affected = [...this.#groups.entries()].filter(([, g]) =>
      g.members.some((m) => m.topics.includes(topic)),
    )
    await Promise.all(affected.map(([name]) => this.#rebalance(name)))
  }

  /** Every member of every group, for closing the bus. */
  members(): Member[] {
    return [...this.#groups.values()].flatMap((g) => g.members)
  }

  #group(name: string): Group {
    let group = this.#groups.get(name)
    if (group === undefined) this.#groups.set(name, (group = { members: [], chain: Promise.resolve() }))
    return group
  }

  #rebalance(name: string, leaving?: Member): Promise<void> {
    const group = this.#group(name)
    const run = group.chain.then(async () => {
      const desired = this.#assign(group.members)
      const everyone = leaving === undefined ? group.members : [...group.members, leaving]
      // Release first, everywhere: a partition is never worked by two members at once.
      await Promise.all(
        everyone.flatMap((m) => {
          const keep = desired.get(m) ?? new Set<string>()
          return [...m.owned.keys()].filter((k) => !keep.has(k)).map((k) => m.release(k))
        }),
      )
      for (const m of group.members) {
        for (const key of desired.get(m) ?? []) {
          const [topic, partition] = splitKey(key)
          const log = this.#topics.get(topic)?.partitions[partition]
          if (log !== undefined) m.acquire(log)
        }
      }
      if (group.members.length === 0) this.#groups.delete(name)
    })
    group.chain = run.catch(() => undefined)
    return run
  }

  /** Round-robin of each topic's partitions over the members reading it, in join order. */
  #assign(members: readonly Member[]): Map<Member, Set<string>> {
    const out = new Map<Member, Set<string>>(members.map((m) => [m, new Set<string>()]))
    const topics = new Set(members.flatMap((m) => m.topics))
    for (const name of [...topics].sort()) {
      const readers = members.filter((m) => m.topics.includes(name))
      const topic = this.#topics.get(name)
      if (topic === undefined || readers.length === 0) continue
      for (const log of topic.partitions)
        out.get(readers[log.partition % readers.length]!)!.add(partitionKeyOf(log))
    }
    return out
  }
}

function splitKey(key: string): [string, number] {
  const i = key.lastIndexOf(':')
  return [key.slice(0, i), Number(key.slice(i + 1))]
}
