// The Kafka bootstrap address that test/setup/services.ts provided, or a failure that says why
// there is none (a test that needs Kafka fails loudly, it never skips).
import { inject } from 'vitest'

export function kafkaBrokers(): string {
  const brokers = inject('kafkaBrokers')
  if (!brokers)
    throw new Error(`no Kafka for this run: ${inject('kafkaProblem') || 'services setup did not run'}`)
  return brokers
}
