// The baseline of the http-ingest bench: a bare node:http handler that produces, for each POST, the
// record Tributary's HTTP adapter would (same CloudEvent builder and codec, same key, same Kafka bus
// code) and answers 202 once Kafka acknowledged it; no authentication, no checks, no framework.
// Run as a child process: BENCH_BROKERS, BENCH_TOPIC, BENCH_DEVICES (a JSON file of token → device);
// prints `listening <port>` when ready, and stops on SIGTERM.
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { createKafkaBus } from '../core/bus/kafka.ts'
import { buildEvent } from '../core/events/build.ts'
import { encodeBinary } from '../core/events/kafka-codec.ts'

const brokers = (process.env['BENCH_BROKERS'] ?? '').split(',')
const topic = process.env['BENCH_TOPIC'] ?? ''
const devices = new Map(
  Object.entries(
    JSON.parse(readFileSync(process.env['BENCH_DEVICES'] ?? '', 'utf8')) as Record<string, string>,
  ),
)

const bus = await createKafkaBus({ brokers, clientId: 'tributary-bench-http-baseline' })
await bus.admin.createTopics([{ name: topic, partitions: 6 }])

const server = createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (chunk: Buffer) => chunks.push(chunk))
  req.on('end', () => {
    const token = (req.headers.authorization ?? '').slice('Bearer '.length)
    const type = req.headers['content-type']
    const { key, value, headers } = encodeBinary(
      buildEvent({
        kind: 'telemetry',
        tenant: 'bench',
        device: devices.get(token) ?? 'unknown',
        protocol: 'http',
        subject: (req.url ?? '/v1/x').slice('/v1/'.length),
        data: Buffer.concat(chunks),
        datacontenttype: type,
      }),
    )
    bus.publish([{ topic, key: key?.toString(), value, headers }]).then(
      () => {
        res.writeHead(202)
        res.end()
      },
      () => {
        res.writeHead(503)
        res.end()
      },
    )
  })
})
server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  console.log(`listening ${typeof address === 'object' && address !== null ? address.port : 0}`)
})
process.once('SIGTERM', () => {
  server.close()
  server.closeAllConnections()
  void bus.close().then(() => process.exit(0))
})
