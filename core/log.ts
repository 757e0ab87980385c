// Structured JSON logs (pino) with secrets redacted wherever they appear in a logged object.
import { pino } from 'pino'
import type { Logger } from 'pino'

export type { Logger }

/** Paths whose values never reach a log line. */
export const REDACTED_PATHS = [
  'password',
  'secret',
  'token',
  'apiKey',
  'authorization',
  '*.password',
  '*.secret',
  '*.token',
  '*.apiKey',
  '*.authorization',
  '*.adminToken',
  '*.psk',
  '*.key',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-downlink-apikey"]',
  'config.adminToken',
]

export interface LogOptions {
  readonly level: string
  readonly name?: string
  /** Where lines go; stdout by default. */
  readonly destination?: NodeJS.WritableStream
}

export function createLogger(options: LogOptions): Logger {
  const settings = {
    name: options.name ?? 'tributary',
    level: options.level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  }
  return options.destination === undefined ? pino(settings) : pino(settings, options.destination)
}

/** A logger that drops everything, for library use without a composition root. */
export const silentLogger: Logger = pino({ level: 'silent' })
