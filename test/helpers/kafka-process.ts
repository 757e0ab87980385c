// A `tributary` process on the test Kafka broker with topics of its own (a unique prefix), the
// admin token set, its bound ports read from the start log, and an API client: what the e2e
// suites of the adapters and processors start from.
import type { Api } from './mqtt.ts'
import { ADMIN_TOKEN, createApi } from './mqtt.ts'
import type { TributaryProcess } from './process.ts'
import { startProcess } from './process.ts'
import { uniqueName } from './wait.ts'
import { kafkaBrokers } from '../setup/kafka-env.ts'

export interface KafkaTributary {
  readonly proc: TributaryProcess
  readonly brokers: string
  /** TRIBUTARY_TOPIC_PREFIX of this process. */
  readonly prefix: string
  readonly ingress: string
  /** Bound ports by listener name (`api`, `management`, `http`, `coap`, `mqtt` ...). */
  readonly ports: Record<string, number>
  /** `http://127.0.0.1:<port>` of a listener. */
  url(listener: string): string
  /** The management API with the admin token. */
  readonly api: Api
}

export async function startOnKafka(label: string, env: Record<string, string> = {}): Promise<KafkaTributary> {
  const brokers = kafkaBrokers()
  const prefix = uniqueName(label).replaceAll('-', '_')
  const proc = startProcess(['start'], {
    TRIBUTARY_ADMIN_TOKEN: ADMIN_TOKEN,
    TRIBUTARY_KAFKA_BROKERS: brokers,
    TRIBUTARY_TOPIC_PREFIX: prefix,
    TRIBUTARY_TOPIC_PARTITIONS: '2',
    ...env,
  })
  const started = await proc.waitForLog((l) => l.msg === 'tributary started')
  const ports = started['ports'] as Record<string, number>
  const url = (listener: string): string => {
    const port = ports[listener]
    if (port === undefined) throw new Error(`no ${listener} listener in ${JSON.stringify(ports)}`)
    return `http://127.0.0.1:${port}`
  }
  return { proc, brokers, prefix, ingress: `${prefix}.ingress`, ports, url, api: createApi(url('api')) }
}
