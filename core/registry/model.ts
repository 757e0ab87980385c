// The registry's resources as the rest of Tributary sees them: tenants, devices, device
// credentials and API tokens. Secrets never appear here in the clear (see secrets.ts).

/** Roles of management API callers: admin (everything), manager (devices and credentials), reader. */
export const ROLES = ['admin', 'manager', 'reader'] as const
export type Role = (typeof ROLES)[number]

/** How a device may authenticate; a tenant's policy lists the ones it allows. */
export const AUTH_METHODS = ['password', 'x509', 'psk', 'token'] as const
export type AuthMethod = (typeof AUTH_METHODS)[number]

/** Every stored resource: a version that changes on every write (ETag / If-Match) and timestamps. */
export interface Versioned {
  /** Increments by one on every update; the API serves it as a strong ETag. */
  readonly version: number
  /** ISO 8601. */
  readonly createdAt: string
  readonly updatedAt: string
}

export interface OidcSettings {
  /** The `iss` a token must carry. */
  readonly issuer: string
  /** The `aud` a token must carry. */
  readonly audience: string
  /** Remote JWKS (cached). Exactly one of jwksUri and jwks is set. */
  readonly jwksUri?: string | undefined
  /** Static public keys for offline use (JWK set `keys`). */
  readonly jwks?: ReadonlyArray<Readonly<Record<string, unknown>>> | undefined
  /** Claim that holds the caller's roles (a string or an array of strings); default `roles`. */
  readonly rolesClaim: string
}

export interface TenantQuotas {
  /** Most devices the tenant may register (null: no limit). */
  readonly maxDevices: number | null
  /** Messages per second per device the adapters accept (null: no limit). */
  readonly maxMessagesPerSecond: number | null
  /** Events per second of the whole tenant the processors accept, across processes (null: no limit). */
  readonly maxEventsPerSecond: number | null
  /** Payload bytes per second of the whole tenant the processors accept (null: no limit). */
  readonly maxBytesPerSecond: number | null
  /** Largest payload of one event the processors accept, in bytes (null: no limit). */
  readonly maxPayloadBytes: number | null
  /** Bytes of device files the tenant may hold, uploads in progress included (null: no limit). */
  readonly maxFileStorageBytes: number | null
  /** Device files the tenant may hold, uploads in progress included (null: no limit). */
  readonly maxFiles: number | null
}

export interface TrustAnchor {
  /** The CA certificate, PEM. */
  readonly certificate: string
  /** Derived on write: subject DN, SHA-256 fingerprint (lowercase hex, no colons), expiry. */
  readonly subject: string
  readonly fingerprint: string
  readonly notAfter: string
}

export interface TenantSpec {
  readonly enabled: boolean
  readonly oidc: OidcSettings | null
  readonly quotas: TenantQuotas
  /** Which device authentication methods this tenant allows (default: all). */
  readonly authMethods: readonly AuthMethod[]
  readonly trustAnchors: readonly TrustAnchor[]
  /** Settings later features read (TTN mapping, config push ...), validated by their owners. */
  readonly settings: Readonly<Record<string, unknown>>
}

export interface Tenant extends TenantSpec, Versioned {
  readonly id: string
}

export interface DeviceSpec {
  readonly enabled: boolean
  /** Key/value labels, filterable in lists. */
  readonly labels: Readonly<Record<string, string>>
  /** Devices (gateways) allowed to publish and receive commands for this device. */
  readonly gateways: readonly string[]
  /** The application version the device runs (device-config.ts APP_VERSION_PATTERN); selects a configuration level. */
  readonly appVersion: string | null
}

export interface Device extends DeviceSpec, Versioned {
  readonly tenant: string
  readonly id: string
  /** Last time any adapter saw the device (ISO 8601); not versioned. */
  readonly lastSeen: string | null
}

interface CredentialBase extends Versioned {
  readonly tenant: string
  readonly device: string
  /** Opaque id (UUIDv7). */
  readonly id: string
  readonly enabled: boolean
  /** ISO 8601, or null for no expiry. */
  readonly expiresAt: string | null
}

export interface PasswordCredential extends CredentialBase {
  readonly type: 'password'
  /** PHC-style string from secrets.hashPassword (scrypt); never the password. */
  readonly passwordHash: string
}

export interface X509Credential extends CredentialBase {
  readonly type: 'x509'
  /** The device is matched by the certificate's subject CN, or by its SHA-256 fingerprint. */
  readonly match: 'cn' | 'fingerprint'
  /** Subject CN the certificate must carry (match = cn). */
  readonly subjectCn: string | null
  /** SHA-256 of the DER certificate, lowercase hex (match = fingerprint). */
  readonly fingerprint: string | null
}

export interface PskCredential extends CredentialBase {
  readonly type: 'psk'
  /** `<device>@<tenant>`. */
  readonly identity: string
  /** The key encrypted with the registry key (secrets.encrypt); decrypted only for a handshake. */
  readonly keyEncrypted: string
}

export interface TokenCredential extends CredentialBase {
  readonly type: 'token'
  /** SHA-256 of the secret part of the token (tokens are random, 256 bits). */
  readonly tokenHash: string
}

export type Credential = PasswordCredential | X509Credential | PskCredential | TokenCredential
export type CredentialType = Credential['type']

export interface ApiToken extends Versioned {
  readonly tenant: string
  readonly id: string
  readonly name: string
  readonly role: Role
  readonly tokenHash: string
  readonly expiresAt: string | null
}

/** A page of a list and the cursor of the next one (null at the end). */
export interface Page<T> {
  readonly items: T[]
  readonly next: string | null
}

export interface ListOptions {
  /** 1-1000 (default 100). */
  readonly limit?: number | undefined
  /** Cursor from the previous page's `next`. */
  readonly after?: string | undefined
}

export interface DeviceListOptions extends ListOptions {
  /** Every pair must match (label selector `key=value,...`). */
  readonly labels?: Readonly<Record<string, string>> | undefined
}

/** A JSON Schema (draft 2020-12) that the data of a tenant's events on one channel must satisfy. */
export interface ChannelSchema extends Versioned {
  readonly tenant: string
  readonly channel: string
  readonly schema: Readonly<Record<string, unknown>>
}

/**
 * What a route rule matches; every given field must match. `channel` is a channel or an MQTT-style
 * filter (`+` one level, `#` the rest); `labels` must all be on the device.
 */
export interface RouteMatch {
  readonly channel?: string | undefined
  readonly type?: string | undefined
  readonly labels?: Readonly<Record<string, string>> | undefined
}

export type RouteAction =
  | { readonly action: 'drop' }
  | { readonly action: 'reject'; readonly reason: string }
  | { readonly action: 'set-extension'; readonly name: string; readonly value: string }
  | { readonly action: 'remove-extension'; readonly name: string }
  | { readonly action: 'set-type'; readonly type: string }
  | { readonly action: 'set-subject'; readonly subject: string }
  /** Also publish the event to `<prefix>.events.<tenant>.<topic>`. */
  | { readonly action: 'copy'; readonly topic: string }

export interface RouteRule {
  /** Unique within the table; names the rule in dead letters and metrics. */
  readonly name: string
  readonly match: RouteMatch
  readonly actions: readonly RouteAction[]
}

/** A tenant's route rules, applied in order to every accepted event (all matching rules apply). */
export interface RouteTable extends Versioned {
  readonly tenant: string
  readonly rules: readonly RouteRule[]
}

/** A dead-letter record of one tenant as the API lists it. */
export interface DeadLetter {
  readonly tenant: string
  /** The event id, or `<partition>-<offset>` when the record was not a CloudEvent. */
  readonly id: string
  readonly partition: number
  readonly offset: number
  readonly device: string | null
  readonly type: string | null
  readonly subject: string | null
  readonly step: string
  readonly reason: string
  /** Validation errors and the like, when the step gave them. */
  readonly detail: string | null
  readonly firstFailure: string
  readonly deadLetteredAt: string
  readonly contentType: string | null
  /** The record's value, base64 (at most 64 KiB kept). */
  readonly data: string | null
  /** The webhook subscription whose deliveries failed (step `webhook`); null for other letters. */
  readonly subscription: string | null
}

export interface DeadLetterListOptions extends ListOptions {
  readonly device?: string | undefined
  readonly reason?: string | undefined
  readonly subscription?: string | undefined
}

/** Which events a webhook subscription delivers; every given field must match (lists: any of). */
export interface SubscriptionFilter {
  /** Event types, exact. */
  readonly types?: readonly string[] | undefined
  /** Channels or MQTT-style filters (`+`, `#`) matched against the event's subject. */
  readonly channels?: readonly string[] | undefined
  readonly devices?: readonly string[] | undefined
  /** Every pair must be among the device's labels. */
  readonly labels?: Readonly<Record<string, string>> | undefined
}

export interface RetryPolicy {
  /** Attempts in all, the first included (1-50). */
  readonly maxAttempts: number
  /** First backoff; doubled per attempt, with full jitter, up to maxBackoffMs. */
  readonly initialBackoffMs: number
  readonly maxBackoffMs: number
}

/** Most webhook subscriptions one tenant may have. */
export const MAX_SUBSCRIPTIONS_PER_TENANT = 100

/** A tenant's webhook: where and how its events are pushed. */
export interface WebhookSubscription extends Versioned {
  readonly tenant: string
  /** Opaque id (UUIDv7). */
  readonly id: string
  readonly url: string
  readonly filter: SubscriptionFilter
  /** CloudEvents HTTP binding: binary (ce- headers) or structured (application/cloudevents+json). */
  readonly mode: 'binary' | 'structured'
  /** Batch mode: up to `batchSize` events per request as application/cloudevents-batch+json (null: one per request). */
  readonly batchSize: number | null
  /** Standard Webhooks signing secret (`whsec_<base64>`), encrypted at rest with the registry key. */
  readonly secretEncrypted: string
  readonly headers: Readonly<Record<string, string>>
  readonly timeoutMs: number
  readonly retry: RetryPolicy
  /** `active`, `paused` (by the API), or `disabled` (the endpoint answered 410 Gone). */
  readonly state: 'active' | 'paused' | 'disabled'
  /** Where the last replay request restarted delivery (null: never replayed). */
  readonly replayFrom: string | null
  /** Counts replay requests; each one restarts delivery at replayFrom. */
  readonly replayGeneration: number
}

/** One failed delivery attempt of a webhook subscription. */
export interface WebhookError {
  readonly tenant: string
  readonly subscription: string
  readonly at: string
  /** The webhook-id of the request. */
  readonly webhookId: string
  readonly attempt: number
  /** The HTTP status, when the endpoint answered. */
  readonly status: number | null
  readonly error: string
}

/** Failed attempts kept per subscription; older ones are dropped. */
export const WEBHOOK_ERRORS_KEPT = 20

/** A dead letter a delivery engine claimed for re-drive: where to read it back on the dead-letter topic. */
export interface RedriveClaim {
  readonly tenant: string
  readonly subscription: string
  readonly id: string
  readonly partition: number
  readonly offset: number
}

/**
 * How a re-drive ended: `delivered`, or `dead-lettered` again (as a new letter); both hide the
 * letter. `released` gives it back for a later try (shutdown, unreadable topic); `expired` drops
 * the request because the record is gone from the topic (the letter stays listed).
 */
export type RedriveOutcome = 'delivered' | 'dead-lettered' | 'released' | 'expired'

/** Delivery counters of one subscription, summed over every delivery engine. */
export interface WebhookStats {
  readonly tenant: string
  readonly subscription: string
  readonly attempts: number
  /** Events an endpoint accepted. */
  readonly delivered: number
  readonly failedAttempts: number
  /** Events given up on (each re-drive that fails again counts once more). */
  readonly deadLettered: number
  readonly lastSuccessAt: string | null
  readonly lastFailureAt: string | null
  /** Records of the tenant topic the subscription's group has not yet committed, when last measured. */
  readonly lag: number | null
  readonly lagAt: string | null
}

/** What one engine counted for one subscription since its last flush. */
export interface WebhookStatsDelta {
  readonly tenant: string
  readonly subscription: string
  readonly attempts: number
  readonly delivered: number
  readonly failedAttempts: number
  readonly deadLettered: number
  readonly lastSuccessAt: string | null
  readonly lastFailureAt: string | null
  /** The group's lag when measured in this period (null: not measured, the stored one stays). */
  readonly lag: number | null
  readonly lagAt: string | null
}

/** A deleted tenant whose topics are removed once the grace period has passed. */
export interface TenantTombstone {
  readonly tenant: string
  readonly deletedAt: string
}

/** Which level of a tenant's desired device configuration a document sets (merged in this order). */
export type ConfigScope =
  | { readonly level: 'tenant' }
  | { readonly level: 'app-version'; readonly appVersion: string }
  | { readonly level: 'device'; readonly device: string }

/** One level's desired configuration: a JSON object; version 0 and `{}` until first written. */
export interface ConfigDocument extends Versioned {
  readonly tenant: string
  readonly scope: ConfigScope
  readonly document: Readonly<Record<string, unknown>>
}

/**
 * A label-selector rule of the desired configuration: devices whose labels include every pair of
 * `selector` get `document`, merged after their application version's document and before their own,
 * rules in ascending `priority` (then name), so the highest priority wins.
 */
export interface ConfigRule extends Versioned {
  readonly tenant: string
  readonly name: string
  readonly selector: Readonly<Record<string, string>>
  readonly priority: number
  readonly document: Readonly<Record<string, unknown>>
}

/** What a rule is written with. */
export interface ConfigRuleSpec {
  readonly selector: Readonly<Record<string, string>>
  readonly priority: number
  readonly document: Readonly<Record<string, unknown>>
}

/** A level's document as merged: `{}` at version 0 when never written. */
export interface ConfigLevelDocument {
  readonly document: Readonly<Record<string, unknown>>
  readonly version: number
}

/**
 * Everything the effective configurations of some devices of one tenant are made of, read at once:
 * the tenant default, the documents of the application versions they run, every rule, and per
 * device (those that exist) its appVersion, labels and own document.
 */
export interface ConfigInputs {
  readonly tenant: ConfigLevelDocument
  readonly appVersions: ReadonlyMap<string, ConfigLevelDocument>
  readonly rules: readonly ConfigRule[]
  readonly devices: ReadonlyMap<
    string,
    {
      readonly appVersion: string | null
      readonly labels: Readonly<Record<string, string>>
      readonly own: ConfigLevelDocument
    }
  >
}

/** One document merged into a device's effective configuration: a level, or a rule that matched. */
export type ConfigSource = ConfigScope | { readonly level: 'rule'; readonly rule: string }

/** Configuration ids kept per device as sent; a report of any other id is refused. */
export const CONFIG_SENT_IDS_KEPT = 8

/** A device whose effective configuration id changed; what config.changed says. */
export interface ConfigChange {
  readonly tenant: string
  readonly device: string
  readonly configId: string
  /** The id last announced for the device, or (first announcement) the id it had before the write. */
  readonly previousConfigId: string
  readonly time: Date
}

/** What one fan-out page did: `pending` while a job was there to work on. */
export interface FanoutPage {
  readonly pending: boolean
  readonly announced: number
}

/** What a device was last sent and last reported applying. */
export interface ConfigState {
  readonly delivered: {
    readonly configId: string
    readonly time: string
    readonly protocol: string
  }
  /** null until the device reports. */
  readonly applied: {
    readonly configId: string
    /** 200: applied; 400-599: rejected (Kaa 7/CMP statusCode). */
    readonly statusCode: number
    readonly reasonPhrase: string | null
    readonly time: string
    readonly protocol: string
  } | null
}

/** What a device reports after applying (or failing to apply) a configuration. */
export interface ConfigReportInput {
  readonly configId: string
  readonly statusCode: number
  readonly reasonPhrase: string | null
}

/** A device's report of applying a configuration (Kaa 7/CMP `config/applied`). */
export interface ConfigReport {
  readonly configId: string
  readonly statusCode: number
  readonly reasonPhrase: string | null
  readonly protocol: string
  readonly at: Date
}

/** Devices of one configuration id: delivered last and applied, rejected, or not reported yet (pending). */
export interface ConfigStatusEntry {
  readonly configId: string
  readonly applied: number
  readonly rejected: number
  readonly pending: number
}

/** What a registry change event says; consumers invalidate caches and end sessions on it. */
export interface RegistryChange {
  readonly op: 'created' | 'updated' | 'deleted'
  readonly resource:
    'tenant' | 'device' | 'credential' | 'api-token' | 'schema' | 'routes' | 'subscription' | 'config'
  readonly tenant: string
  /** Set for device and credential changes, and device-level configuration changes. */
  readonly device?: string | undefined
  /**
   * Set for credential, API token and subscription changes, the channel of schema changes and the
   * appVersion of application-version configuration changes.
   */
  readonly id?: string | undefined
  /** The version after the change (the last version for deletes). */
  readonly version: number
}
