// The one catalogue of Tributary errors: a stable code, the status a caller maps it to, whether a
// retry can succeed, and the original cause.

export const errorCatalogue = {
  CONFIG_INVALID: { status: 500, canRetry: false },
  BUS_RECORD_TOO_LARGE: { status: 413, canRetry: false },
  BUS_UNKNOWN_TOPIC: { status: 404, canRetry: false },
  BUS_INVALID_TOPIC: { status: 400, canRetry: false },
  BUS_UNAVAILABLE: { status: 503, canRetry: true },
  BUS_CLOSED: { status: 503, canRetry: true },
  BUS_DATA_DIR_LOCKED: { status: 500, canRetry: false },
  BUS_CORRUPT: { status: 500, canRetry: false },
  EVENT_INVALID: { status: 400, canRetry: false },
  IDENTIFIER_INVALID: { status: 400, canRetry: false },
  PORT_IN_USE: { status: 500, canRetry: false },
  SHUTTING_DOWN: { status: 503, canRetry: true },
  REGISTRY_INVALID: { status: 400, canRetry: false },
  REGISTRY_NOT_FOUND: { status: 404, canRetry: false },
  REGISTRY_CONFLICT: { status: 409, canRetry: false },
  REGISTRY_VERSION_MISMATCH: { status: 412, canRetry: false },
  REGISTRY_QUOTA_EXCEEDED: { status: 403, canRetry: false },
  REGISTRY_UNAVAILABLE: { status: 503, canRetry: true },
  REGISTRY_DATA_DIR_LOCKED: { status: 500, canRetry: false },
  REGISTRY_CORRUPT: { status: 500, canRetry: false },
  AUTH_REQUIRED: { status: 401, canRetry: false },
  AUTH_FORBIDDEN: { status: 403, canRetry: false },
  AUTH_UNAVAILABLE: { status: 503, canRetry: true },
  REQUEST_INVALID: { status: 400, canRetry: false },
  REQUEST_TOO_LARGE: { status: 413, canRetry: false },
  REQUEST_UNSUPPORTED_MEDIA_TYPE: { status: 415, canRetry: false },
  PRECONDITION_REQUIRED: { status: 428, canRetry: false },
  ROUTE_NOT_FOUND: { status: 404, canRetry: false },
  METHOD_NOT_ALLOWED: { status: 405, canRetry: false },
  UPGRADE_REQUIRED: { status: 426, canRetry: false },
  CLUSTER_UNAVAILABLE: { status: 503, canRetry: true },
  RATE_LIMITED: { status: 429, canRetry: true },
  COMMAND_FAILED: { status: 502, canRetry: false },
  COMMAND_TIMEOUT: { status: 504, canRetry: false },
  BLOB_INVALID_KEY: { status: 400, canRetry: false },
  BLOB_INTEGRITY: { status: 400, canRetry: false },
  BLOB_TOO_LARGE: { status: 413, canRetry: false },
  BLOB_UNAVAILABLE: { status: 503, canRetry: true },
  FILES_QUOTA_EXCEEDED: { status: 409, canRetry: true },
  INTERNAL: { status: 500, canRetry: false },
} as const satisfies Record<string, { status: number; canRetry: boolean }>

export type ErrorCode = keyof typeof errorCatalogue

export class TributaryError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly canRetry: boolean
  readonly details: Readonly<Record<string, unknown>> | undefined

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'TributaryError'
    this.code = code
    this.status = errorCatalogue[code].status
    this.canRetry = errorCatalogue[code].canRetry
    this.details = options.details
  }
}

export function isTributaryError(err: unknown, code?: ErrorCode): err is TributaryError {
  return err instanceof TributaryError && (code === undefined || err.code === code)
}
