// The webhook subscription operations of the RegistryService: fields checked, the signing secret
// generated (or the caller's checked) and encrypted with the registry key, views without it;
// replay requests recorded for the delivery engines, and their failed attempts read back.
import { randomBytes } from 'node:crypto'
import { TributaryError } from '../errors.ts'
import { uuidv7 } from '../events/ids.ts'
import type { Tenant, Versioned, WebhookSubscription } from './model.ts'
import type { Secrets } from './secrets.ts'
import type { RegistryService, SubscriptionView } from './service.ts'
import { notFound } from './service-credentials.ts'
import type { Precondition, RegistryStore } from './store.ts'
import { checkListOptions, checkOpaqueId, checkTenantId, onlyKeys } from './validate.ts'
import {
  SECRET_PREFIX,
  SUBSCRIPTION_FIELDS,
  checkSigningSecret,
  subscriptionFields,
} from './validate-subscriptions.ts'

/** Bytes of a generated signing secret. */
const SECRET_BYTES = 32

export interface SubscriptionContext {
  readonly store: RegistryStore
  readonly secrets: Secrets
  /** Signals a successful write and passes the value through. */
  readonly changed: <T>(value: T) => T
  readonly requireTenant: (id: string) => Promise<Tenant>
  /** Read-modify-write under the resource's version (see service-impl.ts). */
  readonly update: <T extends Versioned>(
    what: string,
    read: () => Promise<T | undefined>,
    write: (current: T, pre: Precondition) => Promise<T>,
    pre?: Precondition,
  ) => Promise<T>
  /** Let URLs name loopback, link-local and private hosts (TRIBUTARY_WEBHOOK_ALLOW_PRIVATE). */
  readonly allowPrivate: boolean
}

type SubscriptionOperations = Pick<
  RegistryService,
  | 'createSubscription'
  | 'getSubscription'
  | 'listSubscriptions'
  | 'updateSubscription'
  | 'deleteSubscription'
  | 'pauseSubscription'
  | 'resumeSubscription'
  | 'rotateSubscriptionSecret'
  | 'replaySubscription'
  | 'listSubscriptionErrors'
>

/** The associated data the signing secret is encrypted under: it decrypts for this subscription only. */
export const subscriptionSecretContext = (tenant: string, id: string): string => `webhook:${tenant}/${id}`

/** The signing secret (`whsec_...`) of a stored subscription, for the delivery engine. */
export function decryptSubscriptionSecret(secrets: Secrets, subscription: WebhookSubscription): string {
  const context = subscriptionSecretContext(subscription.tenant, subscription.id)
  return secrets.decrypt(subscription.secretEncrypted, context).toString('utf8')
}

export function subscriptionView(subscription: WebhookSubscription): SubscriptionView {
  const { secretEncrypted: _secret, ...view } = subscription
  return view
}

const named = (tenant: string, id: string): string => `webhook subscription ${id} of tenant ${tenant}`

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)$/

/** A replay's start: an ISO 8601 time with offset, not in the future, to the millisecond. */
export function checkReplayFrom(from: unknown, now: number = Date.now()): string {
  const ms = typeof from === 'string' && ISO_TIME.test(from) ? Date.parse(from) : Number.NaN
  if (!Number.isFinite(ms) || ms < 0) {
    throw new TributaryError('REGISTRY_INVALID', 'from must be an ISO 8601 time with an offset', {
      details: { from },
    })
  }
  if (ms > now) {
    throw new TributaryError('REGISTRY_INVALID', 'from must not be in the future', { details: { from } })
  }
  return new Date(ms).toISOString()
}

export function subscriptionOperations(ctx: SubscriptionContext): SubscriptionOperations {
  const { store, secrets, changed, requireTenant, update, allowPrivate } = ctx
  const encrypt = (tenant: string, id: string, secret: string): string =>
    secrets.encrypt(Buffer.from(secret, 'utf8'), subscriptionSecretContext(tenant, id))
  const newSecret = (): string => `${SECRET_PREFIX}${randomBytes(SECRET_BYTES).toString('base64')}`

  const setState = (
    tenant: string,
    id: string,
    state: WebhookSubscription['state'],
    pre: Precondition | undefined,
  ): Promise<SubscriptionView> => {
    checkTenantId(tenant)
    checkOpaqueId(id)
    return update<WebhookSubscription>(
      named(tenant, id),
      () => store.getSubscription(tenant, id),
      // Already there: nothing to write, no new version.
      async (current, version) =>
        current.state === state ? current : store.setSubscriptionState(tenant, id, state, version),
      pre,
    ).then(subscriptionView)
  }

  return {
    async createSubscription(tenant, input) {
      checkTenantId(tenant)
      const fields = onlyKeys(input, [...SUBSCRIPTION_FIELDS, 'secret'], '')
      const checked = subscriptionFields(fields, undefined, allowPrivate)
      const secret = fields['secret'] === undefined ? newSecret() : checkSigningSecret(fields['secret'])
      await requireTenant(tenant)
      const id = uuidv7()
      const created = await store.createSubscription({
        tenant,
        id,
        ...checked,
        secretEncrypted: encrypt(tenant, id, secret),
        state: 'active',
      })
      return { subscription: subscriptionView(changed(created)), secret }
    },

    async getSubscription(tenant, id) {
      const found = await store.getSubscription(checkTenantId(tenant), checkOpaqueId(id))
      if (found === undefined) throw notFound(named(tenant, id))
      return subscriptionView(found)
    },

    async listSubscriptions(tenant, options) {
      const page = checkListOptions(options)
      await requireTenant(checkTenantId(tenant))
      const found = await store.listSubscriptions(tenant, page)
      return { items: found.items.map(subscriptionView), next: found.next }
    },

    async updateSubscription(tenant, id, input, pre) {
      checkTenantId(tenant)
      checkOpaqueId(id)
      const fields = onlyKeys(input, SUBSCRIPTION_FIELDS, '')
      const updated = await update<WebhookSubscription>(
        named(tenant, id),
        () => store.getSubscription(tenant, id),
        (current, version) =>
          store.updateSubscription(
            { ...current, ...subscriptionFields(fields, current, allowPrivate) },
            version,
          ),
        pre,
      )
      return subscriptionView(updated)
    },

    async deleteSubscription(tenant, id, pre) {
      await store.deleteSubscription(checkTenantId(tenant), checkOpaqueId(id), pre)
      changed(undefined)
    },

    pauseSubscription: (tenant, id, pre) => setState(tenant, id, 'paused', pre),
    resumeSubscription: (tenant, id, pre) => setState(tenant, id, 'active', pre),

    async rotateSubscriptionSecret(tenant, id, pre) {
      checkTenantId(tenant)
      checkOpaqueId(id)
      const secret = newSecret()
      const updated = await update<WebhookSubscription>(
        named(tenant, id),
        () => store.getSubscription(tenant, id),
        (current, version) =>
          store.updateSubscription({ ...current, secretEncrypted: encrypt(tenant, id, secret) }, version),
        pre,
      )
      return { subscription: subscriptionView(updated), secret }
    },

    async listSubscriptionErrors(tenant, id) {
      const found = await store.getSubscription(checkTenantId(tenant), checkOpaqueId(id))
      if (found === undefined) throw notFound(named(tenant, id))
      return store.listWebhookErrors(tenant, id)
    },

    async replaySubscription(tenant, id, from, pre) {
      checkTenantId(tenant)
      checkOpaqueId(id)
      const at = checkReplayFrom(from)
      const updated = await update<WebhookSubscription>(
        named(tenant, id),
        () => store.getSubscription(tenant, id),
        (_current, version) => store.replaySubscription(tenant, id, at, version),
        pre,
      )
      return subscriptionView(updated)
    },
  }
}
