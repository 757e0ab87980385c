// A child process for the crash tests: it opens a bus from the JSON description in argv[2], does
// what argv[3] says and reports on stdout, one JSON line per fact, until the parent kills it.
import { openBus } from './implementations.ts'
import type { BusDescription } from './implementations.ts'

const description = JSON.parse(process.argv[2]!) as BusDescription
const mode = process.argv[3]
const topic = process.argv[4]!
const report = (fact: object): void => void process.stdout.write(`${JSON.stringify(fact)}\n`)

const bus = await openBus(description)

if (mode === 'consume-then-hang') {
  // Handles (and so commits) records below `commitBelow`, then hangs on the next one forever.
  const group = process.argv[5]!
  const commitBelow = Number(process.argv[6])
  await bus.subscribe({
    group,
    topics: [topic],
    from: 'earliest',
    maxBatch: 1,
    handler: async (batch) => {
      const offset = batch[0]!.offset
      report({ received: offset })
      if (offset >= commitBelow) await new Promise(() => undefined)
    },
  })
  report({ subscribed: true })
} else if (mode === 'publish-forever') {
  report({ started: true })
  for (let i = 0; ; i++) {
    const acks = await bus.publish([{ topic, key: `k${i % 7}`, value: Buffer.from(`record-${i}`) }])
    report({ acked: `record-${i}`, partition: acks[0]!.partition, offset: acks[0]!.offset })
  }
} else {
  throw new Error(`unknown mode ${mode}`)
}
