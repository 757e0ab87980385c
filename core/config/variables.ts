// Typed environment variables: each one parses a string (or its absence) into a value, and carries
// the description and default that the README's configuration table is generated from.
import { z } from 'zod'

export interface Variable<T> {
  readonly env: string
  readonly description: string
  /** Shown in the configuration table; undefined means "unset". */
  readonly defaultText: string | undefined
  readonly secret: boolean
  readonly schema: z.ZodType<T, string | undefined>
}

interface Options {
  readonly description: string
  readonly secret?: boolean
}

function variable<T>(
  env: string,
  schema: z.ZodType<T, string | undefined>,
  defaultText: string | undefined,
  options: Options,
): Variable<T> {
  return { env, description: options.description, defaultText, secret: options.secret ?? false, schema }
}

const present = (value: string | undefined): value is string => value !== undefined && value.trim() !== ''

export function text(env: string, fallback: string, options: Options): Variable<string> {
  return variable(
    env,
    z
      .string()
      .optional()
      .transform((v) => (present(v) ? v : fallback)),
    fallback,
    options,
  )
}

export function optionalText(env: string, options: Options): Variable<string | undefined> {
  return variable(
    env,
    z
      .string()
      .optional()
      .transform((v) => (present(v) ? v : undefined)),
    undefined,
    options,
  )
}

/** An optional secret of at least minLength characters; always redacted from logs. */
export function optionalSecret(
  env: string,
  minLength: number,
  options: Options,
): Variable<string | undefined> {
  return variable(
    env,
    z
      .string()
      .optional()
      .transform((v) => (present(v) ? v : undefined))
      .refine((v) => v === undefined || v.length >= minLength, {
        message: `must be at least ${minLength} characters`,
      }),
    undefined,
    { ...options, secret: true },
  )
}

/** true/false (also 1/0, yes/no, on/off). */
export function flag(env: string, fallback: boolean, options: Options): Variable<boolean> {
  return variable(
    env,
    z
      .string()
      .optional()
      .transform((v, ctx) => {
        if (!present(v)) return fallback
        const value = v.trim().toLowerCase()
        if (['true', '1', 'yes', 'on'].includes(value)) return true
        if (['false', '0', 'no', 'off'].includes(value)) return false
        ctx.addIssue({ code: 'custom', message: `must be true or false, got ${JSON.stringify(v)}` })
        return z.NEVER
      }),
    String(fallback),
    options,
  )
}

export function integer(
  env: string,
  fallback: number,
  range: { min: number; max: number },
  options: Options,
): Variable<number> {
  const schema = z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (!present(v)) return fallback
      const n = Number(v)
      if (!Number.isInteger(n) || n < range.min || n > range.max) {
        ctx.addIssue({
          code: 'custom',
          message: `must be an integer from ${range.min} to ${range.max}, got ${JSON.stringify(v)}`,
        })
        return z.NEVER
      }
      return n
    })
  return variable(env, schema, String(fallback), options)
}

export function port(env: string, fallback: number, options: Options): Variable<number> {
  return integer(env, fallback, { min: 0, max: 65535 }, options)
}

export function oneOf<const T extends readonly [string, ...string[]]>(
  env: string,
  values: T,
  fallback: T[number],
  options: Options,
): Variable<T[number]> {
  const schema = z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (!present(v)) return fallback
      if (!(values as readonly string[]).includes(v)) {
        ctx.addIssue({
          code: 'custom',
          message: `must be one of ${values.join(', ')}, got ${JSON.stringify(v)}`,
        })
        return z.NEVER
      }
      return v
    })
  return variable(env, schema, fallback, {
    ...options,
    description: `${options.description} One of: ${values.join(', ')}.`,
  })
}

/** Comma-separated list; unset or empty gives undefined. */
export function list(
  env: string,
  pattern: RegExp,
  hint: string,
  options: Options,
): Variable<string[] | undefined> {
  const schema = z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (!present(v)) return undefined
      const items = v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
      const bad = items.filter((s) => !pattern.test(s))
      if (bad.length > 0) {
        ctx.addIssue({
          code: 'custom',
          message: `${bad.map((s) => JSON.stringify(s)).join(', ')} ${bad.length === 1 ? 'is' : 'are'} not ${hint}`,
        })
        return z.NEVER
      }
      return items
    })
  return variable(env, schema, undefined, options)
}
