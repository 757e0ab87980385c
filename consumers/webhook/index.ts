// The webhook delivery component: one runner per subscription that is not disabled, loaded at
// start and kept in step with registry changes; stopping drains in-flight requests, bounded.
// Re-drive requests arrive as subscription changes, and a slow sweep picks up any that were missed.
import { TributaryError } from '../../core/errors.ts'
import type { Component } from '../../core/lifecycle.ts'
import type { WebhookSubscription } from '../../core/registry/model.ts'
import type { DeliveryDeps, SubscriptionRunner } from './delivery.ts'
import { createSubscriptionRunner } from './delivery.ts'
import type { SubscriptionChange, SubscriptionSource } from './ports.ts'
import type { RecentError } from './retry.ts'

export type { DeliveryDeps, SubscriptionRunner } from './delivery.ts'
export { webhookGroup } from './delivery.ts'

export interface WebhookDeliveryDeps extends DeliveryDeps {
  readonly source: SubscriptionSource
  /** How long in-flight requests may finish when stopping (default 5 s); then they are aborted. */
  readonly shutdownGraceMs?: number | undefined
  /** How often pending re-drives are looked for beyond the change events (default 30 s). */
  readonly redriveSweepMs?: number | undefined
}

export interface WebhookDelivery extends Component {
  /** Applies one registry change; the lead feeds it from the registry change stream. */
  onChange(change: SubscriptionChange): Promise<void>
  /** Recent errors of a running subscription (undefined when it does not run here). */
  recentErrors(tenant: string, id: string): RecentError[] | undefined
  /** Ids of the subscriptions running, as `<tenant>/<id>`. */
  running(): string[]
  /** The subscriptions running here. */
  subscriptions(): WebhookSubscription[]
  /** Kicks the runners of subscriptions with pending re-drives (what the periodic sweep does). */
  sweepRedrives(): Promise<void>
}

const keyOf = (tenant: string, id: string): string => `${tenant}/${id}`

/** The error of a subscription that could not start, naming it (its code and cause kept). */
function withSubscription(err: unknown, s: WebhookSubscription): unknown {
  const what = `webhook subscription ${s.id} of tenant ${s.tenant}`
  if (err instanceof TributaryError)
    return new TributaryError(err.code, `${what}: ${err.message}`, {
      cause: err,
      details: { ...err.details },
    })
  return new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
}

// Everything but state and bookkeeping: a change here needs a new runner.
function settings(s: WebhookSubscription): string {
  const { state: _state, version: _version, createdAt: _created, updatedAt: _updated, ...rest } = s
  return JSON.stringify(rest)
}

export function createWebhookDelivery(deps: WebhookDeliveryDeps): WebhookDelivery {
  const runners = new Map<string, SubscriptionRunner>()
  const graceMs = deps.shutdownGraceMs ?? 5000
  let stopping = false
  // Changes of one subscription are applied one at a time, in arrival order.
  let queue: Promise<void> = Promise.resolve()
  let sweeper: NodeJS.Timeout | undefined

  async function sweepRedrives(): Promise<void> {
    if (deps.redrive === undefined || stopping) return
    for (const { tenant, subscription } of await deps.redrive.port.pending())
      runners.get(keyOf(tenant, subscription))?.redrive()
  }

  async function stopOne(key: string): Promise<void> {
    const runner = runners.get(key)
    if (runner === undefined) return
    runners.delete(key)
    await runner.stop(graceMs)
  }

  async function apply(subscription: WebhookSubscription | undefined, key: string): Promise<void> {
    const current = runners.get(key)
    if (subscription === undefined || subscription.state === 'disabled') return stopOne(key)
    if (current !== undefined && settings(current.subscription) === settings(subscription)) {
      if (subscription.state === 'paused') current.pause()
      else current.resume()
      return
    }
    await stopOne(key)
    if (stopping) return
    const runner = createSubscriptionRunner(subscription, deps, () => {
      if (runners.get(key) === runner) runners.delete(key)
    })
    runners.set(key, runner)
    try {
      await runner.start()
    } catch (err) {
      runners.delete(key)
      throw err
    }
  }

  async function reload(tenant: string, id: string): Promise<void> {
    await apply(await deps.source.get(tenant, id), keyOf(tenant, id))
  }

  async function dropTenant(tenant: string): Promise<void> {
    const keys = [...runners.keys()].filter((key) => key.startsWith(`${tenant}/`))
    await Promise.all(keys.map(stopOne))
  }

  return {
    name: 'webhook-delivery',
    async start() {
      const all = await deps.source.listAll()
      for (const subscription of all) {
        if (subscription.state === 'disabled') continue
        try {
          await apply(subscription, keyOf(subscription.tenant, subscription.id))
        } catch (err) {
          throw withSubscription(err, subscription)
        }
      }
      deps.log.info({ subscriptions: runners.size }, 'webhook delivery started')
      if (deps.redrive !== undefined) {
        sweeper = setInterval(() => {
          sweepRedrives().catch((err: unknown) => deps.log.warn({ err }, 'looking for re-drives failed'))
        }, deps.redriveSweepMs ?? 30_000)
        sweeper.unref()
      }
    },
    onChange(change) {
      const run = async (): Promise<void> => {
        if (stopping) return
        if (change.resource === 'subscription' && change.id !== undefined) {
          if (change.op === 'deleted') await stopOne(keyOf(change.tenant, change.id))
          else {
            await reload(change.tenant, change.id)
            // A re-drive request is written as a change of its subscription.
            runners.get(keyOf(change.tenant, change.id))?.redrive()
          }
        } else if (change.resource === 'tenant' && change.op === 'deleted') await dropTenant(change.tenant)
      }
      const next = queue.then(run)
      queue = next.catch((err: unknown) =>
        deps.log.error({ err, change }, 'applying a subscription change failed'),
      )
      return next
    },
    recentErrors: (tenant, id) => runners.get(keyOf(tenant, id))?.recentErrors(),
    running: () => [...runners.keys()],
    subscriptions: () => [...runners.values()].map((r) => r.subscription),
    sweepRedrives,
    async stop() {
      stopping = true
      clearInterval(sweeper)
      await queue
      await Promise.all([...runners.keys()].map(stopOne))
    },
  }
}
