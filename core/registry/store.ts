// The RegistryStore port: persistence of the registry on one SQL schema, served by PGlite
// (embedded) and PostgreSQL. Every write runs in one transaction that also records its
// RegistryChange in an outbox, so no change is committed without its event.
import type { CloudEvent } from '../events/cloudevent.ts'
import type { CommandQueue } from './command-queue.ts'
import type { FileStore } from './files.ts'
import type {
  ApiToken,
  ChannelSchema,
  ConfigChange,
  ConfigDocument,
  ConfigInputs,
  ConfigReport,
  ConfigRule,
  ConfigRuleSpec,
  ConfigScope,
  ConfigState,
  ConfigStatusEntry,
  DeadLetter,
  DeadLetterListOptions,
  Credential,
  Device,
  DeviceListOptions,
  DeviceSpec,
  FanoutPage,
  ListOptions,
  Page,
  RedriveClaim,
  RedriveOutcome,
  RegistryChange,
  RouteRule,
  RouteTable,
  Tenant,
  TenantSpec,
  TenantTombstone,
  WebhookError,
  WebhookStats,
  WebhookStatsDelta,
  WebhookSubscription,
} from './model.ts'

/** A write that must see this version, else it fails with REGISTRY_VERSION_MISMATCH (412). */
export interface Precondition {
  readonly ifVersion?: number | undefined
}

/** What a new credential carries; the store sets id, version and timestamps. */
export type NewCredential = DistributiveOmit<Credential, 'id' | 'version' | 'createdAt' | 'updatedAt'>
export type NewApiToken = Omit<ApiToken, 'id' | 'version' | 'createdAt' | 'updatedAt'>
export type NewSubscription = Omit<
  WebhookSubscription,
  'version' | 'createdAt' | 'updatedAt' | 'replayFrom' | 'replayGeneration'
>
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

export interface OutboxEntry {
  readonly seq: number
  readonly change: RegistryChange
}

/**
 * Errors: TributaryError with REGISTRY_NOT_FOUND (404), REGISTRY_CONFLICT (409: exists already,
 * or a unique credential is taken), REGISTRY_VERSION_MISMATCH (412), REGISTRY_QUOTA_EXCEEDED (403),
 * REGISTRY_UNAVAILABLE (503, the database cannot be reached).
 */
export interface RegistryStore {
  readonly kind: 'pglite' | 'postgres'
  /** Commands waiting for their device (same database). */
  readonly commands: CommandQueue
  /** Device file metadata and the events of completed uploads (same database). */
  readonly files: FileStore

  createTenant(id: string, spec: TenantSpec): Promise<Tenant>
  getTenant(id: string): Promise<Tenant | undefined>
  listTenants(options?: ListOptions): Promise<Page<Tenant>>
  updateTenant(id: string, spec: TenantSpec, pre?: Precondition): Promise<Tenant>
  /** Deletes the tenant with its devices, credentials and API tokens. */
  deleteTenant(id: string, pre?: Precondition): Promise<void>

  /** Refuses past the tenant's maxDevices quota. */
  createDevice(tenant: string, id: string, spec: DeviceSpec): Promise<Device>
  getDevice(tenant: string, id: string): Promise<Device | undefined>
  listDevices(tenant: string, options?: DeviceListOptions): Promise<Page<Device>>
  updateDevice(tenant: string, id: string, spec: DeviceSpec, pre?: Precondition): Promise<Device>
  /** Deletes the device with its credentials. */
  deleteDevice(tenant: string, id: string, pre?: Precondition): Promise<void>
  /** Records activity; neither versioned nor an outbox event (it is not a configuration change). */
  touchDevice(tenant: string, id: string, at: Date): Promise<void>

  /** Password and PSK: at most one per device (409). X.509 subject CN / fingerprint: unique per tenant. */
  createCredential(credential: NewCredential): Promise<Credential>
  getCredential(tenant: string, device: string, id: string): Promise<Credential | undefined>
  listCredentials(tenant: string, device: string): Promise<Credential[]>
  /** Replaces the mutable fields (enabled, expiresAt, and the secret material of its type). */
  updateCredential(credential: Credential, pre?: Precondition): Promise<Credential>
  deleteCredential(tenant: string, device: string, id: string, pre?: Precondition): Promise<void>

  // Hot-path lookups (the cache in front of them serves most calls).
  findPassword(tenant: string, device: string): Promise<Credential | undefined>
  findX509(tenant: string, by: { cn: string } | { fingerprint: string }): Promise<Credential | undefined>
  findPsk(tenant: string, device: string): Promise<Credential | undefined>
  /** Device tokens and API tokens are looked up by their id (the token's public part). */
  findDeviceToken(id: string): Promise<Credential | undefined>

  createApiToken(token: NewApiToken): Promise<ApiToken>
  getApiToken(tenant: string, id: string): Promise<ApiToken | undefined>
  findApiToken(id: string): Promise<ApiToken | undefined>
  listApiTokens(tenant: string, options?: ListOptions): Promise<Page<ApiToken>>
  deleteApiToken(tenant: string, id: string, pre?: Precondition): Promise<void>

  /** Creates or replaces the tenant's schema of a channel (ifVersion 0: only if there is none). */
  putChannelSchema(
    tenant: string,
    channel: string,
    schema: Readonly<Record<string, unknown>>,
    pre?: Precondition,
  ): Promise<ChannelSchema>
  getChannelSchema(tenant: string, channel: string): Promise<ChannelSchema | undefined>
  listChannelSchemas(tenant: string, options?: ListOptions): Promise<Page<ChannelSchema>>
  deleteChannelSchema(tenant: string, channel: string, pre?: Precondition): Promise<void>

  /** The tenant's route rules (version 0 and no rules when never written). */
  getRouteTable(tenant: string): Promise<RouteTable>
  putRouteTable(tenant: string, rules: readonly RouteRule[], pre?: Precondition): Promise<RouteTable>

  /** One level of the tenant's desired device configuration (version 0 and `{}` when never written); 404 without its tenant or device. */
  getConfigDocument(tenant: string, scope: ConfigScope): Promise<ConfigDocument>
  /** Creates or replaces one level's document (ifVersion 0: only if never written). */
  putConfigDocument(
    tenant: string,
    scope: ConfigScope,
    document: Readonly<Record<string, unknown>>,
    pre?: Precondition,
  ): Promise<ConfigDocument>

  /** What the effective configurations of these devices are made of (devices that do not exist left out). */
  configInputs(tenant: string, devices: readonly string[]): Promise<ConfigInputs>
  /** The tenant's configuration rules, by priority then name (none for a tenant that does not exist). */
  listConfigRules(tenant: string): Promise<ConfigRule[]>
  getConfigRule(tenant: string, name: string): Promise<ConfigRule | undefined>
  /** Creates or replaces a rule (ifVersion 0: only if new); REGISTRY_QUOTA_EXCEEDED past CONFIG_RULES_MAX. */
  putConfigRule(tenant: string, name: string, spec: ConfigRuleSpec, pre?: Precondition): Promise<ConfigRule>
  deleteConfigRule(tenant: string, name: string, pre?: Precondition): Promise<void>

  /** Records that the device was sent this configuration (neither versioned nor a change; a deleted device is skipped). */
  recordConfigDelivered(
    tenant: string,
    device: string,
    configId: string,
    protocol: string,
    at: Date,
  ): Promise<void>
  /** Records the device's report; false, and nothing written, for an id not among the last ones sent to it. */
  recordConfigApplied(tenant: string, device: string, report: ConfigReport): Promise<boolean>
  getConfigState(tenant: string, device: string): Promise<ConfigState | undefined>
  /** Per configuration id last sent: how many devices applied, rejected or have not reported it. */
  configStatus(tenant: string): Promise<ConfigStatusEntry[]>
  /**
   * Works one page of the oldest config.changed fan-out job (sql/config-fanout.ts): the devices whose
   * effective configuration id changed get `announce(change)` in the event outbox, in the same
   * transaction as the job's progress.
   */
  configFanoutPage(limit: number, announce: (change: ConfigChange) => CloudEvent): Promise<FanoutPage>

  /** Refuses past MAX_SUBSCRIPTIONS_PER_TENANT (REGISTRY_QUOTA_EXCEEDED). */
  createSubscription(subscription: NewSubscription): Promise<WebhookSubscription>
  getSubscription(tenant: string, id: string): Promise<WebhookSubscription | undefined>
  listSubscriptions(tenant: string, options?: ListOptions): Promise<Page<WebhookSubscription>>
  /** Every tenant's subscriptions, ordered by (tenant, id): what a delivery engine loads at start. */
  listAllSubscriptions(options?: ListOptions): Promise<Page<WebhookSubscription>>
  /** Replaces the mutable fields (everything but tenant, id and timestamps). */
  updateSubscription(subscription: WebhookSubscription, pre?: Precondition): Promise<WebhookSubscription>
  setSubscriptionState(
    tenant: string,
    id: string,
    state: WebhookSubscription['state'],
    pre?: Precondition,
  ): Promise<WebhookSubscription>
  deleteSubscription(tenant: string, id: string, pre?: Precondition): Promise<void>
  /** Sets replayFrom (an ISO time) and counts replayGeneration up: a change the engines act on. */
  replaySubscription(
    tenant: string,
    id: string,
    from: string,
    pre?: Precondition,
  ): Promise<WebhookSubscription>

  /** Tenants deleted at or before `before` whose topics still wait for removal. */
  tenantTombstones(before: Date, limit: number): Promise<TenantTombstone[]>
  /** Forgets a tombstone once the tenant's topics are gone. */
  dropTenantTombstone(tenant: string): Promise<void>

  /** Records dead letters of existing tenants (others are skipped); a known (partition, offset) is kept once. */
  recordDeadLetters(letters: readonly DeadLetter[]): Promise<void>
  /** Newest first; cursor pagination. */
  listDeadLetters(tenant: string, options?: DeadLetterListOptions): Promise<Page<DeadLetter>>
  /** Keeps only the newest `keep` dead letters of the tenant. */
  trimDeadLetters(tenant: string, keep: number): Promise<void>

  /**
   * Asks the engines to re-drive the subscription's webhook dead letters (those of `ids`, else all
   * not yet re-driven) and returns how many were asked for; REGISTRY_NOT_FOUND for an unknown
   * subscription, REGISTRY_CONFLICT for a disabled one. Writes a subscription change (same version).
   */
  requestRedrive(tenant: string, subscription: string, ids?: readonly string[]): Promise<number>
  /** Claims up to `limit` requested letters of the subscription for `leaseMs`, oldest first. */
  claimRedrives(tenant: string, subscription: string, limit: number, leaseMs: number): Promise<RedriveClaim[]>
  /** Ends a claim: delivered and dead-lettered hide the letter; released gives it back; expired drops the request. */
  finishRedrive(claim: RedriveClaim, outcome: RedriveOutcome): Promise<void>
  /** Subscriptions with requested letters that no engine holds. */
  pendingRedrives(): Promise<Array<{ tenant: string; subscription: string }>>

  /** Adds engines' delivery counters to their subscriptions (deleted subscriptions are skipped). */
  addWebhookStats(deltas: readonly WebhookStatsDelta[]): Promise<void>
  /** The subscription's summed counters (zeros before any engine reported). */
  getWebhookStats(tenant: string, subscription: string): Promise<WebhookStats>

  /** Records failed attempts of existing subscriptions (others are skipped), keeping the newest 20 of each. */
  recordWebhookErrors(errors: readonly WebhookError[]): Promise<void>
  /** The subscription's kept failed attempts, newest first. */
  listWebhookErrors(tenant: string, subscription: string): Promise<WebhookError[]>

  /** Outbox entries not yet published, oldest first. */
  pendingChanges(limit: number): Promise<OutboxEntry[]>
  /** Marks entries up to and including seq as published. */
  markPublished(seq: number): Promise<void>

  close(): Promise<void>
}
