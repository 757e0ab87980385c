// Request/response across instances: an API call with `wait` registers its request id in the
// cluster state (which instance waits), and whoever learns the outcome — the adapter instance that
// got the device's response, or the one that expired the command — sends it to that instance.
import type { ClusterState } from '../core/cluster/cluster.ts'
import { TributaryError } from '../core/errors.ts'
import type { Logger } from '../core/log.ts'

export const WAIT_TOPIC = 'command-outcome'

export type WaitOutcome =
  | {
      readonly kind: 'response'
      readonly tenant: string
      readonly device: string
      readonly status: number
      readonly contentType?: string | undefined
      readonly payload: Buffer
    }
  | {
      readonly kind: 'ended'
      readonly tenant: string
      readonly device: string
      readonly status: 'expired' | 'failed'
      readonly reason: string
    }
  | { readonly kind: 'timeout' }

const waitKey = (tenant: string, requestId: string): string => `command-wait:${tenant}/${requestId}`

type Wire =
  | (Omit<Extract<WaitOutcome, { kind: 'response' }>, 'payload'> & { payload: string; requestId: string })
  | (Extract<WaitOutcome, { kind: 'ended' }> & { requestId: string })

/** Sends an outcome to the instance waiting on the request id, if one waits. */
export async function notifyWaiter(
  cluster: Pick<ClusterState, 'getValue' | 'send'>,
  tenant: string,
  requestId: string,
  outcome: Exclude<WaitOutcome, { kind: 'timeout' }>,
): Promise<void> {
  const instance = await cluster.getValue(waitKey(tenant, requestId))
  if (instance === undefined) return
  const wire: Wire =
    outcome.kind === 'response'
      ? { ...outcome, payload: outcome.payload.toString('base64'), requestId }
      : { ...outcome, requestId }
  await cluster.send(instance, WAIT_TOPIC, JSON.stringify(wire))
}

export interface Waiters {
  /**
   * Waits for the outcome of the request `requestId` sent to `device` of `tenant`: the device's
   * response, the command's end (expired, failed), or the timeout. Call before sending the command.
   */
  register(
    tenant: string,
    device: string,
    requestId: string,
    timeoutMs: number,
  ): Promise<{
    readonly outcome: Promise<WaitOutcome>
    readonly cancel: () => void
  }>
  stop(): void
}

interface Pending {
  readonly device: string
  readonly resolve: (outcome: WaitOutcome) => void
}

function parse(body: string): Wire | undefined {
  try {
    const value = JSON.parse(body) as Partial<Wire> | null
    if (typeof value !== 'object' || value === null) return undefined
    if (
      typeof value.tenant !== 'string' ||
      typeof value.device !== 'string' ||
      typeof value.requestId !== 'string'
    )
      return undefined
    if (value.kind === 'response' && typeof value.status === 'number' && typeof value.payload === 'string')
      return value as Wire
    if (value.kind === 'ended' && (value.status === 'expired' || value.status === 'failed'))
      return value as Wire
    return undefined
  } catch {
    return undefined
  }
}

export function createWaiters(deps: {
  readonly cluster: Pick<ClusterState, 'instance' | 'setValue' | 'onMessage'>
  readonly log: Logger
}): Waiters {
  const { cluster, log } = deps
  const pending = new Map<string, Pending>()
  const off = cluster.onMessage(WAIT_TOPIC, (body) => {
    const wire = parse(body)
    if (wire === undefined) return void log.warn('ignoring a malformed command outcome')
    const waiting = pending.get(`${wire.tenant}/${wire.requestId}`)
    // The device must be the one the command went to: a response to someone else's request id is ignored.
    if (waiting === undefined || waiting.device !== wire.device) return
    waiting.resolve(
      wire.kind === 'response'
        ? { ...wire, payload: Buffer.from(wire.payload, 'base64') }
        : {
            kind: 'ended',
            tenant: wire.tenant,
            device: wire.device,
            status: wire.status,
            reason: wire.reason,
          },
    )
  })

  return {
    async register(tenant, device, requestId, timeoutMs) {
      const id = `${tenant}/${requestId}`
      if (pending.has(id)) {
        throw new TributaryError('REQUEST_INVALID', `request id ${requestId} is already being waited on`)
      }
      // Set once the wait is registered; a message may settle the wait before that.
      const clock: { timer?: NodeJS.Timeout } = {}
      let settle!: (outcome: WaitOutcome) => void
      const outcome = new Promise<WaitOutcome>((resolve) => (settle = resolve))
      const finish = (result: WaitOutcome): void => {
        if (pending.get(id)?.resolve !== finish) return
        pending.delete(id)
        clearTimeout(clock.timer)
        settle(result)
      }
      pending.set(id, { device, resolve: finish })
      try {
        // Lives a little longer than the wait, so a late outcome still finds where to go (and is dropped).
        await cluster.setValue(waitKey(tenant, requestId), cluster.instance, timeoutMs + 5_000)
      } catch (err) {
        pending.delete(id)
        throw err
      }
      clock.timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs)
      return { outcome, cancel: () => finish({ kind: 'timeout' }) }
    },
    stop() {
      off()
      for (const waiting of [...pending.values()]) waiting.resolve({ kind: 'timeout' })
    },
  }
}
