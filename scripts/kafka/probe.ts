// Readiness of a Kafka cluster, seen the way a client sees it: a metadata request that lists
// at least one broker (KRaft lists a broker only once it is registered and unfenced).
import { setTimeout as delay } from 'node:timers/promises'
import { Admin } from '@platformatic/kafka'
import { KafkaSetupError } from './exec.ts'

/** Resolves to undefined when `brokers` answers metadata within `timeoutMs`, else to the reason. */
export async function probeKafka(brokers: string, timeoutMs = 2_000): Promise<string | undefined> {
  const admin = new Admin({
    clientId: 'tributary-kafka-probe',
    bootstrapBrokers: brokers.split(','),
    connectTimeout: timeoutMs,
    requestTimeout: timeoutMs,
    timeout: timeoutMs,
    retries: 0,
  })
  try {
    const metadata = await admin.metadata({ topics: [], forceUpdate: true })
    return metadata.brokers.size > 0 ? undefined : 'metadata lists no broker yet'
  } catch (err) {
    return err instanceof Error ? err.message : String(err)
  } finally {
    await admin.close().catch(() => undefined)
  }
}

export interface WaitOptions {
  timeoutMs: number
  /** called between attempts; a returned string aborts the wait with that reason (e.g. "process exited") */
  abort?: () => Promise<string | undefined>
}

/** Polls metadata until the cluster answers; throws after `timeoutMs` with the last reason. */
export async function waitForKafka(brokers: string, { timeoutMs, abort }: WaitOptions): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let reason = 'not probed'
  while (Date.now() < deadline) {
    const aborted = await abort?.()
    if (aborted !== undefined) throw new KafkaSetupError(aborted)
    const left = deadline - Date.now()
    const failure = await probeKafka(brokers, Math.max(250, Math.min(2_000, left)))
    if (failure === undefined) return
    reason = failure
    await delay(150)
  }
  throw new KafkaSetupError(`Kafka at ${brokers} did not answer metadata within ${timeoutMs} ms (${reason})`)
}
