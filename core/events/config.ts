// Configuration events a device causes (docs/config.md): `config.delivered` when an adapter sent it
// its effective configuration, `config.applied` for its report. Subject `config`, JSON data.
import type { EventInput, Protocol } from './build.ts'
import { jsonData } from './build.ts'

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
