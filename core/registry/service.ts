// The registry's operations as the management API, the CLI and --demo use them: identifiers and
// limits checked, secrets hashed or encrypted before they reach the store, and a version check on
// every change. Only this module writes to the RegistryStore.
import type {
  ApiToken,
  AuthMethod,
  ChannelSchema,
  ConfigDocument,
  ConfigReportInput,
  ConfigRule,
  ConfigScope,
  ConfigSource,
  ConfigState,
  ConfigStatusEntry,
  Credential,
  Device,
  DeviceListOptions,
  ListOptions,
  OidcSettings,
  Page,
  Role,
  RouteRule,
  RouteTable,
  Tenant,
  TenantQuotas,
  WebhookError,
  WebhookSubscription,
} from './model.ts'
import type { Precondition } from './store.ts'

/** Tenant fields a caller may set; omitted ones keep their value (update) or default (create). */
export interface TenantInput {
  readonly enabled?: boolean | undefined
  readonly oidc?: OidcSettings | null | undefined
  readonly quotas?: Partial<TenantQuotas> | undefined
  readonly authMethods?: readonly AuthMethod[] | undefined
  /** CA certificates in PEM; subject, fingerprint and expiry are derived and checked. */
  readonly trustAnchors?: readonly string[] | undefined
  readonly settings?: Readonly<Record<string, unknown>> | undefined
}

export interface DeviceInput {
  readonly enabled?: boolean | undefined
  readonly labels?: Readonly<Record<string, string>> | undefined
  readonly gateways?: readonly string[] | undefined
  /** null: none. */
  readonly appVersion?: string | null | undefined
}

/** A credential as the caller describes it; secrets in the clear only on the way in. */
export type CredentialInput = (
  | { readonly type: 'password'; readonly password: string }
  | { readonly type: 'x509'; readonly subjectCn: string }
  | { readonly type: 'x509'; readonly fingerprint: string }
  | { readonly type: 'x509'; readonly certificate: string }
  /** key: hex, 16-64 bytes; generated when omitted. */
  | { readonly type: 'psk'; readonly key?: string | undefined }
  | { readonly type: 'token' }
) & {
  readonly enabled?: boolean | undefined
  readonly expiresAt?: string | null | undefined
}

/** A credential as the API shows it: never a hash, an encrypted key or a secret. */
export type CredentialView = DistributiveOmit<Credential, 'passwordHash' | 'keyEncrypted' | 'tokenHash'>
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

/** A created credential; `secret` is the generated token or PSK key, shown this once. */
export interface CreatedCredential {
  readonly credential: CredentialView
  readonly secret?: string | undefined
}

export type ApiTokenView = Omit<ApiToken, 'tokenHash'>

export interface CreatedApiToken {
  readonly token: ApiTokenView
  /** The bearer token, shown this once. */
  readonly secret: string
}

export interface ApiTokenInput {
  readonly name: string
  readonly role: Role
  /** ISO 8601; default 90 days from now; at most 2 years. */
  readonly expiresAt?: string | undefined
}

/** Webhook subscription fields a caller may set; omitted ones keep their value (update) or default (create). */
export interface SubscriptionPatch {
  readonly url?: string | undefined
  readonly filter?: WebhookSubscription['filter'] | undefined
  readonly mode?: WebhookSubscription['mode'] | undefined
  readonly batchSize?: number | null | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly timeoutMs?: number | undefined
  /** Omitted keys keep their value (update) or default (create). */
  readonly retry?:
    | {
        readonly maxAttempts?: number | undefined
        readonly initialBackoffMs?: number | undefined
        readonly maxBackoffMs?: number | undefined
      }
    | undefined
}

export interface SubscriptionInput extends SubscriptionPatch {
  readonly url: string
  /** The caller's own signing secret (`whsec_<base64>`); generated when omitted. */
  readonly secret?: string | undefined
}

/** A subscription as the API shows it: never its secret. */
export type SubscriptionView = Omit<WebhookSubscription, 'secretEncrypted'>

export interface CreatedSubscription {
  readonly subscription: SubscriptionView
  /** The signing secret, shown this once. */
  readonly secret: string
}

/** A device's configuration as it is sent: the merged document and its id. */
export interface ResolvedConfig {
  /** device-config.ts configId: sha256 of the canonical JSON, 22 characters of base64url. */
  readonly configId: string
  readonly config: Readonly<Record<string, unknown>>
}

/** A device's desired configuration: its levels merged, and the id (content hash) of the result. */
export interface EffectiveConfig extends ResolvedConfig {
  readonly tenant: string
  readonly device: string
  readonly appVersion: string | null
  /** The levels merged, in order (later wins), each with its version (0: never written). */
  readonly levels: ReadonlyArray<ConfigSource & { readonly version: number }>
  /** What the device was last sent and last reported; null before the first delivery. */
  readonly state: ConfigState | null
}

/**
 * Errors are TributaryError: REGISTRY_INVALID (400) for bad identifiers, limits or fields,
 * REGISTRY_NOT_FOUND, REGISTRY_CONFLICT, REGISTRY_VERSION_MISMATCH, REGISTRY_QUOTA_EXCEEDED,
 * REGISTRY_UNAVAILABLE.
 */
export interface RegistryService {
  createTenant(id: string, input: TenantInput): Promise<Tenant>
  getTenant(id: string): Promise<Tenant>
  listTenants(options?: ListOptions): Promise<Page<Tenant>>
  updateTenant(id: string, input: TenantInput, pre?: Precondition): Promise<Tenant>
  deleteTenant(id: string, pre?: Precondition): Promise<void>

  createDevice(tenant: string, id: string, input: DeviceInput): Promise<Device>
  getDevice(tenant: string, id: string): Promise<Device>
  listDevices(tenant: string, options?: DeviceListOptions): Promise<Page<Device>>
  updateDevice(tenant: string, id: string, input: DeviceInput, pre?: Precondition): Promise<Device>
  deleteDevice(tenant: string, id: string, pre?: Precondition): Promise<void>

  createCredential(tenant: string, device: string, input: CredentialInput): Promise<CreatedCredential>
  getCredential(tenant: string, device: string, id: string): Promise<CredentialView>
  listCredentials(tenant: string, device: string): Promise<CredentialView[]>
  /** Replaces the device's password credential, creating it if there is none. */
  setPassword(tenant: string, device: string, password: string): Promise<CredentialView>
  updateCredential(
    tenant: string,
    device: string,
    id: string,
    input: { readonly enabled?: boolean | undefined; readonly expiresAt?: string | null | undefined },
    pre?: Precondition,
  ): Promise<CredentialView>
  deleteCredential(tenant: string, device: string, id: string, pre?: Precondition): Promise<void>

  createApiToken(tenant: string, input: ApiTokenInput): Promise<CreatedApiToken>
  getApiToken(tenant: string, id: string): Promise<ApiTokenView>
  listApiTokens(tenant: string, options?: ListOptions): Promise<Page<ApiTokenView>>
  deleteApiToken(tenant: string, id: string, pre?: Precondition): Promise<void>

  /**
   * Creates (version 1) or replaces the JSON Schema a channel's event data must satisfy; the schema
   * must compile (json-schema.ts). ifVersion 0: only if the channel has none yet.
   */
  putChannelSchema(
    tenant: string,
    channel: string,
    schema: Readonly<Record<string, unknown>>,
    pre?: Precondition,
  ): Promise<ChannelSchema>
  getChannelSchema(tenant: string, channel: string): Promise<ChannelSchema>
  listChannelSchemas(tenant: string, options?: ListOptions): Promise<Page<ChannelSchema>>
  deleteChannelSchema(tenant: string, channel: string, pre?: Precondition): Promise<void>

  /** The tenant's route rules; version 0 and no rules until they are first written. */
  getRouteTable(tenant: string): Promise<RouteTable>
  /** Replaces every rule (validate-routes.ts); ifVersion 0: only if never written. */
  putRouteTable(tenant: string, rules: readonly RouteRule[], pre?: Precondition): Promise<RouteTable>

  /** One level of the desired configuration; version 0 and `{}` until first written. */
  getConfig(tenant: string, scope: ConfigScope): Promise<ConfigDocument>
  /**
   * Replaces one level's document: a JSON object within the tenant's bound (settings.configMaxBytes,
   * default 64 KiB as canonical JSON). ifVersion 0: only if never written.
   */
  putConfig(
    tenant: string,
    scope: ConfigScope,
    document: Readonly<Record<string, unknown>>,
    pre?: Precondition,
  ): Promise<ConfigDocument>
  /** Applies an RFC 7396 JSON merge patch to one level's document (same bound as putConfig). */
  patchConfig(tenant: string, scope: ConfigScope, patch: unknown, pre?: Precondition): Promise<ConfigDocument>
  /** The tenant's configuration rules in the order they merge (priority, then name). */
  listConfigRules(tenant: string): Promise<ConfigRule[]>
  /** One rule; REGISTRY_NOT_FOUND when there is none of that name. */
  getConfigRule(tenant: string, name: string): Promise<ConfigRule>
  /**
   * Creates or replaces a rule `{selector, priority?, config}` (device-config.ts checkConfigRule; the
   * document within the tenant's bound, at most CONFIG_RULES_MAX per tenant). ifVersion 0: only if new.
   */
  putConfigRule(tenant: string, name: string, body: unknown, pre?: Precondition): Promise<ConfigRule>
  /** Applies an RFC 7396 JSON merge patch to a rule's `{selector, priority, config}`. */
  patchConfigRule(tenant: string, name: string, patch: unknown, pre?: Precondition): Promise<ConfigRule>
  deleteConfigRule(tenant: string, name: string, pre?: Precondition): Promise<void>
  /**
   * Tenant default, the device's appVersion document, the rules whose selector its labels match and
   * the device document, deep-merged in that order.
   */
  getEffectiveConfig(tenant: string, device: string): Promise<EffectiveConfig>
  /**
   * The effective configuration of many devices of one tenant at once (a few queries per 1,000
   * devices), without their delivery state; devices that do not exist are left out.
   */
  getEffectiveConfigs(tenant: string, devices: readonly string[]): Promise<Map<string, ResolvedConfig>>
  /**
   * The device says which application version it runs (docs/config.md, "Application version"):
   * REGISTRY_INVALID for a malformed one; the device is written (a device change, which moves it to
   * that version's configuration) only when the version differs from the one recorded.
   */
  reportAppVersion(tenant: string, device: string, appVersion: unknown): Promise<Device>
  /** Per configuration id last sent to devices: applied, rejected and pending (not reported) counts. */
  getConfigStatus(tenant: string): Promise<ConfigStatusEntry[]>
  /** An adapter sent the device its effective configuration `configId`. */
  configDelivered(tenant: string, device: string, configId: string, protocol: string): Promise<void>
  /**
   * The device's report (device-config.ts checkConfigReport); REGISTRY_INVALID for a malformed one or
   * for an id that was never sent to the device, and then nothing is recorded.
   */
  configApplied(tenant: string, device: string, report: unknown, protocol: string): Promise<ConfigReportInput>

  /** At most 100 per tenant; the signing secret is returned once, encrypted at rest. */
  createSubscription(tenant: string, input: SubscriptionInput): Promise<CreatedSubscription>
  getSubscription(tenant: string, id: string): Promise<SubscriptionView>
  listSubscriptions(tenant: string, options?: ListOptions): Promise<Page<SubscriptionView>>
  updateSubscription(
    tenant: string,
    id: string,
    input: SubscriptionPatch,
    pre?: Precondition,
  ): Promise<SubscriptionView>
  deleteSubscription(tenant: string, id: string, pre?: Precondition): Promise<void>
  /** Stops deliveries until it is resumed. */
  pauseSubscription(tenant: string, id: string, pre?: Precondition): Promise<SubscriptionView>
  /** Makes a paused or disabled subscription active again. */
  resumeSubscription(tenant: string, id: string, pre?: Precondition): Promise<SubscriptionView>
  /** A new signing secret, returned once; the old one stops signing at once. */
  rotateSubscriptionSecret(tenant: string, id: string, pre?: Precondition): Promise<CreatedSubscription>
  /** The subscription's newest failed delivery attempts (at most 20), newest first. */
  listSubscriptionErrors(tenant: string, id: string): Promise<WebhookError[]>
  /** Delivers again every event from `from` (an ISO time, not in the future) on. */
  replaySubscription(tenant: string, id: string, from: string, pre?: Precondition): Promise<SubscriptionView>
}
