// Where to send a TTN device its downlinks, shared by every instance: the X-Downlink-Push / Replace
// URLs and the X-Downlink-Apikey that TTN sends with every webhook call, checked (downlink-url.ts)
// and kept in the cluster state under `ttn-downlink:<tenant>/<device>` for TARGET_TTL_MS, the API
// key encrypted with the registry key and bound to that device. An offline command sink built from
// it sends commands as downlinks from whichever instance the dispatcher runs them on. The API key
// is never logged.
import type { CommandOutlet, CommandSink } from '../../../commands/outlet.ts'
import type { ClusterState } from '../../../core/cluster/cluster.ts'
import type { Logger } from '../../../core/log.ts'
import type { Secrets } from '../../../core/registry/secrets.ts'
import type { DownlinkSender, DownlinkTarget } from './downlink-send.ts'
import { createDownlinkSender, downlinkRequest } from './downlink-send.ts'
import type { DownlinkIds } from './downlink-url.ts'
import { checkDownlinkUrls } from './downlink-url.ts'

export type { DownlinkTarget } from './downlink-send.ts'

/**
 * What TTN downlinks for commands need (fields of the HTTP adapter's deps); without the command
 * outlet or the secrets no downlink targets are kept.
 */
export interface TtnCommandDeps {
  readonly commands?: Pick<CommandOutlet, 'offline' | 'pending'> | undefined
  readonly cluster: Pick<ClusterState, 'setValue' | 'getValue'>
  /** The registry key's operations: the API key is stored encrypted. */
  readonly secrets?: Pick<Secrets, 'encrypt' | 'decrypt'> | undefined
  /** TRIBUTARY_WEBHOOK_ALLOW_PRIVATE: downlink URLs on loopback and private networks, and over http. */
  readonly allowPrivateDownlinks?: boolean | undefined
  /** The HTTP sender (tests pass a double); createDownlinkSender by default. */
  readonly downlinkSender?: DownlinkSender | undefined
}

export interface DownlinkTargets {
  /**
   * Keeps the downlink headers of an accepted call for the message's device, then lets the commands
   * waiting for it go out. False when the call brought none, or ones that fail the checks.
   */
  remember(
    tenant: string,
    ids: DownlinkIds,
    header: (name: string) => string | undefined,
    at: Date,
  ): Promise<boolean>
  get(tenant: string, device: string): Promise<DownlinkTarget | undefined>
  /** Stops offering sinks and closes the sender's sockets. */
  close(): void
}

export const PUSH_HEADER = 'x-downlink-push'
export const REPLACE_HEADER = 'x-downlink-replace'
export const API_KEY_HEADER = 'x-downlink-apikey'
/** A target lapses this long after the device's last webhook call; each call renews it. */
export const TARGET_TTL_MS = 14 * 86_400_000

/** Sinks kept per device between drains (least recently made dropped first). */
const MAX_CACHED_SINKS = 10_000
const MAX_KEY_LENGTH = 1024
// TTN API keys are `NNSXS.` and base32-ish; any visible ASCII without spaces is accepted.
const API_KEY = /^[\x21-\x7e]+$/

/** The cluster value key, also the encryption context: a copied value does not decrypt for another device. */
export const targetKey = (tenant: string, device: string): string => `ttn-downlink:${tenant}/${device}`

interface StoredTarget {
  readonly push: string
  readonly replace: string
  /** secrets.encrypt of the API key, context targetKey(). */
  readonly key: string
  readonly seenAt: string
}

const noTargets: DownlinkTargets = {
  remember: () => Promise.resolve(false),
  get: () => Promise.resolve(undefined),
  close: () => {},
}

export function createDownlinkTargets(deps: TtnCommandDeps, log: Logger): DownlinkTargets {
  const { cluster, commands } = deps
  const secrets = deps.secrets
  if (commands === undefined || secrets === undefined) return noTargets
  const allowPrivate = deps.allowPrivateDownlinks ?? false
  const sender = deps.downlinkSender ?? createDownlinkSender({ allowPrivate })

  const read = (tenant: string, device: string, value: string): DownlinkTarget | undefined => {
    try {
      const stored = JSON.parse(value) as StoredTarget
      const apiKey = secrets.decrypt(stored.key, targetKey(tenant, device)).toString('utf8')
      return { push: stored.push, replace: stored.replace, apiKey, seenAt: new Date(stored.seenAt) }
    } catch (err) {
      // Another registry key, or an altered value: unusable until the next uplink replaces it.
      log.warn({ err, tenant, device }, 'TTN downlink target unreadable')
      return undefined
    }
  }

  async function get(tenant: string, device: string): Promise<DownlinkTarget | undefined> {
    const value = await cluster.getValue(targetKey(tenant, device))
    return value === undefined ? undefined : read(tenant, device, value)
  }

  const sinkFor = (tenant: string, device: string, target: DownlinkTarget): CommandSink => ({
    protocol: 'ttn',
    async deliver(command) {
      // TTN has no gateways: a downlink queue belongs to one device.
      if (command.tenant !== tenant || command.device !== device) return { kind: 'gone' }
      const request = downlinkRequest(target, command)
      const result = 'kind' in request ? request : await sender.send(request)
      log.debug(
        { tenant, device, command: command.id, mode: command.downlink ?? 'push', result: result.kind },
        'TTN downlink',
      )
      return result
    },
  })

  // The dispatcher does not ask a sink again once it said `gone` in a drain, and knows sinks by
  // identity: the same stored target must give the same sink, or a TTN outage would be retried in
  // a loop. Each webhook call stores a new value (a fresh IV), so the next uplink brings a new sink.
  const sinks = new Map<string, { value: string; sink: CommandSink }>()
  const stopOffering = commands.offline(async (tenant, device) => {
    const key = targetKey(tenant, device)
    const value = await cluster.getValue(key)
    if (value === undefined) return undefined
    const known = sinks.get(key)
    if (known?.value === value) return known.sink
    const target = read(tenant, device, value)
    if (target === undefined) return undefined
    const sink = sinkFor(tenant, device, target)
    sinks.delete(key)
    sinks.set(key, { value, sink })
    if (sinks.size > MAX_CACHED_SINKS) sinks.delete(sinks.keys().next().value!)
    return sink
  })

  return {
    async remember(tenant, ids, header, at) {
      const apiKey = header(API_KEY_HEADER)
      const push = header(PUSH_HEADER)
      const replace = header(REPLACE_HEADER)
      // A webhook without a downlink API key sends none of them: nothing to keep, nothing wrong.
      if (apiKey === undefined && push === undefined && replace === undefined) return false
      const device = ids.device
      const checked = checkDownlinkUrls(push, replace, ids, allowPrivate)
      const keyOk = apiKey !== undefined && apiKey.length <= MAX_KEY_LENGTH && API_KEY.test(apiKey)
      if (!checked.ok || !keyOk) {
        const reason = checked.ok ? 'X-Downlink-Apikey is missing or malformed' : checked.reason
        log.warn({ tenant, device, reason }, 'TTN downlink headers refused: no commands for the device')
        return false
      }
      const key = targetKey(tenant, device)
      const stored: StoredTarget = {
        push: checked.push,
        replace: checked.replace,
        key: secrets.encrypt(Buffer.from(apiKey, 'utf8'), key),
        seenAt: at.toISOString(),
      }
      try {
        await cluster.setValue(key, JSON.stringify(stored), TARGET_TTL_MS)
      } catch (err) {
        // The event is durable already: the webhook call still succeeds, the next one tries again.
        log.warn({ err, tenant, device }, 'TTN downlink target not stored')
        return false
      }
      commands.pending(tenant, device)
      return true
    },
    get,
    close() {
      stopOffering()
      sinks.clear()
      sender.close()
    },
  }
}
