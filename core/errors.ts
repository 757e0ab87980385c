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
