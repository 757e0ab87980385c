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
