// JSON Schemas that tenants give for their channels' data: compiled with Ajv (draft 2020-12,
// formats), within limits on size and nesting, with remote references refused. The API checks a
// schema compiles before storing it; the processors compile it again (cached) to validate events.
import { Ajv2020 } from 'ajv/dist/2020.js'
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import { TributaryError } from '../errors.ts'

export const SCHEMA_LIMITS = {
  /** Largest schema, as JSON. */
  bytes: 64 * 1024,
  /** Deepest nesting of objects and arrays in a schema. */
  depth: 32,
  /** Validation errors reported per event. */
  errors: 20,
} as const

export interface SchemaError {
  /** JSON Pointer to the failing part of the data (`` for the root). */
  readonly path: string
  readonly message: string
}

export type SchemaCheck = (data: unknown) => readonly SchemaError[]

function depthOf(value: unknown, depth = 0): number {
  if (typeof value !== 'object' || value === null) return depth
  let deepest = depth + 1
  for (const child of Object.values(value)) {
    deepest = Math.max(deepest, depthOf(child, depth + 1))
    if (deepest > SCHEMA_LIMITS.depth) return deepest
  }
  return deepest
}

const invalid = (message: string): TributaryError =>
  new TributaryError('REGISTRY_INVALID', `schema: ${message}`)

function newAjv(): Ajv2020 {
  // allErrors off: the first errors are reported quickly; strict mode refuses unknown keywords (but
  // not the usual `properties` without `type: object`, which strictTypes would); no
  // loadSchema, so a reference Ajv cannot resolve locally fails compilation instead of being fetched.
  const ajv = new Ajv2020({ strict: true, strictTypes: false, allErrors: false, validateFormats: true })
  ;(addFormats as unknown as (a: Ajv2020) => void)(ajv)
  return ajv
}

const toErrors = (errors: readonly ErrorObject[] | null | undefined): SchemaError[] =>
  (errors ?? []).slice(0, SCHEMA_LIMITS.errors).map((e) => ({
    path: e.instancePath,
    message: e.message ?? e.keyword,
  }))

/**
 * Compiles a schema or throws REGISTRY_INVALID saying why (too large, too deep, not a schema, a
 * `$ref` that is not local). Each call uses its own Ajv instance, so `$id`s of different tenants
 * never meet.
 */
export function compileSchema(schema: unknown): SchemaCheck {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    throw invalid('must be a JSON object')
  }
  const bytes = Buffer.byteLength(JSON.stringify(schema))
  if (bytes > SCHEMA_LIMITS.bytes) throw invalid(`larger than ${SCHEMA_LIMITS.bytes} bytes as JSON`)
  if (depthOf(schema) > SCHEMA_LIMITS.depth) throw invalid(`nested deeper than ${SCHEMA_LIMITS.depth} levels`)
  let validate: ValidateFunction
  try {
    validate = newAjv().compile(schema)
  } catch (err) {
    // Unresolvable (remote) references end up here too: nothing is ever fetched.
    throw invalid(err instanceof Error ? err.message : String(err))
  }
  return (data) => (validate(data) ? [] : toErrors(validate.errors))
}
