// Wires the webhook delivery engine (consumers/webhook) to the registry, the bus and the
// dead-letter topic: subscriptions come from the registry store and follow its change events;
// an event whose last attempt failed goes to `<prefix>.deadletter` like the processors' refusals,
// with step `webhook`, so the dead-letter index lists it for its tenant; failed attempts, delivery
// counters and re-drive claims are kept in the registry database for the API.
import { createWebhookDelivery, webhookGroup } from '../consumers/webhook/index.ts'
import type { WebhookDelivery } from '../consumers/webhook/index.ts'
import { createWebhookMetrics } from '../consumers/webhook/metrics.ts'
import type { DeadLetterPort, RedrivePort, SubscriptionSource } from '../consumers/webhook/ports.ts'
import { systemClock } from '../consumers/webhook/ports.ts'
import { busDeadLetterRecords } from '../consumers/webhook/redrive-records.ts'
import { createHttpSender } from '../consumers/webhook/sender.ts'
import { createStatsCollector, groupLag } from '../consumers/webhook/stats.ts'
import { encodeBinary } from '../core/events/kafka-codec.ts'
import { topicNames } from '../core/events/topics.ts'
import type { Component } from '../core/lifecycle.ts'
import type { WebhookSubscription } from '../core/registry/model.ts'
import { decryptSubscriptionSecret } from '../core/registry/service-subscriptions.ts'
import { SUBSCRIPTION_HEADER, deadLetter } from '../processors/deadletter.ts'
import type { EventBus } from '../core/bus/bus.ts'
import type { Config } from '../core/config/index.ts'
import type { Logger } from '../core/log.ts'
import type { Registry } from '../core/metrics.ts'
import type { RegistryParts } from './registry.ts'
import { tenantTopicEnsurer } from './tenant-topic.ts'
import { storedErrorLog } from './webhook-errors.ts'

export interface WebhookWiring {
  readonly config: Config
  readonly log: Logger
  readonly registry: Registry
  readonly bus: EventBus
  readonly registryParts: RegistryParts
}

/** How often delivery counters are added to the registry database. */
export const STATS_FLUSH_MS = 5_000

export function webhookDelivery(deps: WebhookWiring): Component & Pick<WebhookDelivery, 'recentErrors'> {
  const { config, bus, registryParts, registry } = deps
  const { store, auth, secrets } = registryParts
  const log = deps.log.child({ component: 'webhooks' })
  const topics = topicNames(config.topicPrefix)

  const source: SubscriptionSource = {
    async listAll() {
      const all: WebhookSubscription[] = []
      let after: string | undefined
      do {
        const page = await store.listAllSubscriptions({ limit: 1000, after })
        all.push(...page.items)
        after = page.next ?? undefined
      } while (after !== undefined)
      return all
    },
    get: (tenant, id) => store.getSubscription(tenant, id),
    setState: async (tenant, id, state) => void (await store.setSubscriptionState(tenant, id, state)),
    deviceLabels: async (tenant, device) => (await auth.findDevice(tenant, device))?.labels,
    secretOf: (subscription) => decryptSubscriptionSecret(secrets, subscription),
  }

  const deadLetters: DeadLetterPort = {
    async deadLetter(subscription, event, reason, attempts, lastError) {
      const { key, value, headers } = encodeBinary(event)
      const record = deadLetter(
        topics.deadletter,
        {
          topic: topics.events(subscription.tenant),
          partition: 0,
          offset: 0,
          timestamp: Date.now(),
          key: key?.toString(),
          value,
          headers,
        },
        'webhook',
        reason,
        new Date(),
        JSON.stringify({ subscription: subscription.id, attempts, lastError }),
      )
      const withSubscription = new Map(record.headers)
      withSubscription.set(SUBSCRIPTION_HEADER, Buffer.from(subscription.id))
      await bus.publish([{ ...record, headers: withSubscription }])
    },
  }

  const redrivePort: RedrivePort = {
    claim: (subscription, limit, leaseMs) =>
      store.claimRedrives(subscription.tenant, subscription.id, limit, leaseMs),
    finish: (claim, outcome) => store.finishRedrive(claim, outcome),
    pending: () => store.pendingRedrives(),
  }
  const records = busDeadLetterRecords(bus, {
    topic: topics.deadletter,
    groupPrefix: `${config.topicPrefix}-webhook-redrive`,
  })

  const sender = createHttpSender({ allowPrivate: config.webhookAllowPrivate })
  const errorLog = storedErrorLog(store, log)
  const stats = createStatsCollector({
    sink: { add: (deltas) => store.addWebhookStats(deltas) },
    log,
    running: () => delivery.subscriptions(),
    lagOf: (s) =>
      groupLag(
        bus.admin,
        topics.events(s.tenant),
        webhookGroup(config.topicPrefix, s.id, s.replayGeneration),
      ),
  })
  const delivery = createWebhookDelivery({
    bus,
    topics,
    ensureTopic: tenantTopicEnsurer({
      admin: bus.admin,
      topics,
      partitions: config.topicPartitions,
      tenant: (id) => auth.tenant(id),
    }),
    source,
    sender,
    deadLetters,
    errorLog,
    stats,
    redrive: { port: redrivePort, records, log },
    clock: systemClock,
    metrics: createWebhookMetrics(registry),
    log,
    shutdownGraceMs: Math.floor(config.shutdownTimeoutMs / 2),
  })
  let unsubscribe: (() => void) | undefined
  let flusher: NodeJS.Timeout | undefined

  return {
    name: 'webhooks',
    recentErrors: (tenant, id) => delivery.recentErrors(tenant, id),
    async start() {
      // Changes that arrive while the subscriptions load are applied after them, in order.
      unsubscribe = auth.onChange((change) => {
        delivery
          .onChange(change)
          .catch((err: unknown) => log.warn({ err, change }, 'applying a subscription change failed'))
      })
      await delivery.start()
      flusher = setInterval(() => void stats.flush(), STATS_FLUSH_MS)
      flusher.unref()
    },
    async stop() {
      unsubscribe?.()
      unsubscribe = undefined
      await delivery.stop()
      clearInterval(flusher)
      await Promise.all([errorLog.flush(), stats.flush()])
      sender.close()
    },
  }
}
