// Checks every response an integration test receives against the OpenAPI document the server
// serves: the status must be documented for the operation, and the body must match its schema.
import { Ajv2020 } from 'ajv/dist/2020.js'
import type { ValidateFunction } from 'ajv'

type Operations = Record<string, { responses?: Record<string, { content?: Record<string, unknown> }> }>

export type ResponseChecker = (
  method: string,
  url: string,
  status: number,
  type: string | null,
  body: unknown,
) => void

const pointer = (...parts: string[]): string =>
  parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/')

export function createResponseChecker(document: Record<string, unknown>): ResponseChecker {
  // OpenAPI 3.1 schemas are JSON Schema 2020-12; OpenAPI's own keywords (example, discriminator) are ignored.
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false })
  ajv.addSchema({ ...document, $id: 'openapi' })
  const paths = document['paths'] as Record<string, Operations>
  const templates = Object.keys(paths).map((path) => ({
    path,
    pattern: new RegExp(`^${path.replaceAll(/\{[^}]+\}/g, '[^/]+')}$`),
  }))
  const compiled = new Map<string, ValidateFunction>()

  return (method, url, status, type, body) => {
    const path = new URL(url, 'http://x').pathname
    const template = templates.find((t) => t.pattern.test(path))
    const operation = template === undefined ? undefined : paths[template.path]?.[method.toLowerCase()]
    if (template === undefined || operation === undefined) return // unknown route or method: 404/405
    const response = operation.responses?.[String(status)]
    if (response === undefined)
      throw new Error(`${method} ${template.path} answered ${status}, which the document does not list`)
    const media = type?.split(';', 1)[0]?.trim()
    if (response.content === undefined) {
      if (body !== undefined)
        throw new Error(`${method} ${template.path} ${status} has a body the document does not describe`)
      return
    }
    if (media === undefined || response.content[media] === undefined) {
      throw new Error(
        `${method} ${template.path} ${status} answered ${String(type)}, not a documented media type`,
      )
    }
    // Only JSON bodies are parsed and checked; other media (file content) only need to be documented.
    if (media !== 'application/json' && !media.endsWith('+json')) return
    const ref = `openapi#/${pointer('paths', template.path, method.toLowerCase(), 'responses', String(status), 'content', media, 'schema')}`
    let validate = compiled.get(ref)
    if (validate === undefined) {
      validate = ajv.compile({ $ref: ref })
      compiled.set(ref, validate)
    }
    if (!validate(body)) {
      throw new Error(
        `${method} ${template.path} ${status} body does not match the document: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body)}`,
      )
    }
  }
}
