// Configuration events (docs/config.md): `config.delivered` when an adapter sent a device its
// effective configuration, `config.applied` for its report, `config.changed` when a write gave it
// another configuration id. Subject `config`, JSON data.
import type { CloudEvent } from './cloudevent.ts'
import type { EventInput, Protocol } from './build.ts'
import { buildEvent, jsonData } from './build.ts'

interface ConfigEventBase {
  readonly tenant: string
  readonly device: string
  /** The gateway, when it asked for its child device. */
  readonly sender?: string | undefined
  readonly protocol: Protocol
  readonly credential?: string | undefined
  readonly time?: Date | undefined
}

/** Tributary's own statement (no credential: the processors pass it through like command status). */
export function deliveredEventInput(
  input: Omit<ConfigEventBase, 'credential'> & { readonly configId: string },
): EventInput {
  return {
    kind: 'config.delivered',
    tenant: input.tenant,
    device: input.device,
    sender: input.sender,
    protocol: input.protocol,
    subject: 'config',
    time: input.time,
    ...jsonData({ configId: input.configId }),
  }
}

export function appliedEventInput(
  input: ConfigEventBase & {
    readonly configId: string
    readonly statusCode: number
    readonly reasonPhrase: string | null
  },
): EventInput {
  return {
    kind: 'config.applied',
    tenant: input.tenant,
    device: input.device,
    sender: input.sender,
    protocol: input.protocol,
    subject: 'config',
    credential: input.credential,
    time: input.time,
    ...jsonData({ configId: input.configId, statusCode: input.statusCode, reasonPhrase: input.reasonPhrase }),
  }
}

/** The device's desired configuration id changed (a registry write; protocol `api`). */
export function buildConfigChangedEvent(change: {
  readonly tenant: string
  readonly device: string
  readonly configId: string
  readonly previousConfigId: string
  readonly time: Date
}): CloudEvent {
  return buildEvent({
    kind: 'config.changed',
    tenant: change.tenant,
    device: change.device,
    protocol: 'api',
    subject: 'config',
    time: change.time,
    ...jsonData({ configId: change.configId, previousConfigId: change.previousConfigId }),
  })
}
