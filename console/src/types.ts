// What the management API answers, as the console reads it (docs/api.md, docs/websocket.md).

export interface Page<T> {
  readonly items: T[]
  readonly next: string | null
}

export interface Identity {
  readonly kind: 'admin' | 'api-token' | 'oidc'
  readonly subject: string
  readonly tenant: string | null
  readonly roles: string[]
  readonly globalAdmin: boolean
}

export interface Device {
  readonly id: string
  readonly enabled: boolean
  readonly labels: Record<string, string>
  readonly gateways: string[]
  readonly appVersion?: string | null
  readonly lastSeen: string | null
}

export interface DeadLetter {
  readonly id: string
  readonly partition: number
  readonly offset: number
  readonly device: string | null
  readonly type: string | null
  readonly subject: string | null
  readonly step: string
  readonly reason: string
  readonly detail: string | null
  readonly deadLetteredAt: string
  readonly contentType: string | null
  readonly data: string | null
  /** Set for a webhook subscription's failed delivery; null for the processors' refusals. */
  readonly subscription: string | null
}

/** A CloudEvent in the JSON event format, as the event WebSocket sends it. */
export interface CloudEventJson {
  readonly id: string
  readonly type: string
  readonly source: string
  readonly subject?: string
  readonly time?: string
  readonly datacontenttype?: string
  readonly device?: string
  readonly data?: unknown
  readonly data_base64?: string
  readonly [extension: string]: unknown
}

/** One level's configuration document (docs/config.md); version 0 and `{}` until first written. */
export interface ConfigDocument {
  readonly level: string
  readonly config: Record<string, unknown>
  readonly version: number
  readonly updatedAt?: string
}

/** A level merged into a device's configuration, with the version that was merged. */
export interface ConfigLevel {
  readonly level: 'tenant' | 'app-version' | 'rule' | 'device'
  readonly appVersion?: string
  readonly rule?: string
  readonly device?: string
  readonly version: number
}

/** `GET …/devices/{d}/config/effective`: the desired configuration and what the device did with it. */
export interface EffectiveConfig {
  readonly device: string
  readonly appVersion: string | null
  readonly configId: string
  readonly config: Record<string, unknown>
  readonly levels: ConfigLevel[]
  readonly state: {
    readonly delivered: { readonly configId: string; readonly time: string; readonly protocol: string }
    readonly applied: {
      readonly configId: string
      readonly statusCode: number
      readonly reasonPhrase: string | null
      readonly time: string
    } | null
  } | null
}

/** An uploaded device file's metadata (docs/files.md). */
export interface DeviceFile {
  readonly id: string
  readonly device: string
  readonly name: string
  readonly size: number
  readonly sha256: string
  readonly contentType: string
  readonly uploadedAt: string
  readonly createdAt: string
}

/** `GET …/files/{id}/url`: a short-lived download URL that needs no other credentials. */
export interface FileUrl {
  readonly url: string
  readonly method: string
  readonly expiresAt: string
}
