// The EventBus implementations the contract suite runs against, and how a child process makes the
// same bus (the child gets a JSON description, not a live object).
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { EventBus } from '../../../core/bus/bus.ts'
import { createEmbeddedBus } from '../../../core/bus/embedded/index.ts'

export type BusDescription =
  | { readonly kind: 'embedded'; readonly dataDir: string; readonly maxMessageBytes: number }
  | { readonly kind: 'kafka'; readonly brokers: string[]; readonly maxMessageBytes: number }

export const TEST_MAX_MESSAGE_BYTES = 64 * 1024

export async function openBus(description: BusDescription): Promise<EventBus> {
  switch (description.kind) {
    case 'embedded':
      return createEmbeddedBus({
        dataDir: description.dataDir,
        maxMessageBytes: description.maxMessageBytes,
        drainTimeoutMs: 5000,
      })
    case 'kafka': {
      const { createKafkaBus } = await import('../../../core/bus/kafka.ts')
      return createKafkaBus({
        brokers: description.brokers,
        clientId: 'tributary-test',
        maxMessageBytes: description.maxMessageBytes,
        sessionTimeoutMs: 6000,
        heartbeatIntervalMs: 500,
        drainTimeoutMs: 5000,
      })
    }
  }
}

export function embeddedDescription(): BusDescription {
  return {
    kind: 'embedded',
    dataDir: mkdtempSync(join(tmpdir(), 'tributary-bus-')),
    maxMessageBytes: TEST_MAX_MESSAGE_BYTES,
  }
}

export function kafkaDescription(brokers: string): BusDescription {
  return { kind: 'kafka', brokers: brokers.split(','), maxMessageBytes: TEST_MAX_MESSAGE_BYTES }
}
