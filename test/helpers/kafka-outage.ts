// A Kafka broker of the test's own (the project's Maven-resolved single-node broker) behind a TCP
// proxy that it advertises to clients, so that a test can take the broker away from the process it
// drives (proxy.cut(): connections reset, new ones refused) and give it back (proxy.restore()),
// with its topics and records intact and without disturbing the broker everyone else uses.
import { startLocalKafka } from '../../scripts/kafka.ts'
import { freePort } from '../../scripts/kafka/system.ts'
import type { TcpProxy } from './tcp-proxy.ts'
import { startTcpProxy } from './tcp-proxy.ts'

export interface KafkaBehindProxy {
  /** Bootstrap address: the proxy, which the broker also advertises. */
  readonly brokers: string
  readonly proxy: TcpProxy
  stop(): Promise<void>
}

export async function startKafkaBehindProxy(): Promise<KafkaBehindProxy> {
  const port = await freePort()
  const proxy = await startTcpProxy({ host: '127.0.0.1', port })
  try {
    const kafka = await startLocalKafka({ port, advertisedPort: proxy.port })
    return {
      brokers: kafka.brokers,
      proxy,
      async stop() {
        await kafka.stop()
        await proxy.close()
      },
    }
  } catch (err) {
    await proxy.close()
    throw err
  }
}
