// The API reference page, rendered on the server from the OpenAPI document: one self-contained HTML
// page (no scripts, no CDN) listing every operation with its parameters, bodies and responses.
type Json = Record<string, unknown>

const esc = (value: unknown): string =>
  String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')

/** Descriptions are written with `code` spans (as in Markdown): shown as code, the rest escaped. */
const prose = (value: unknown): string => esc(value).replace(/`([^`]+)`/g, '<code>$1</code>')

const obj = (value: unknown): Json => (typeof value === 'object' && value !== null ? (value as Json) : {})

const CONSTRAINTS = [
  'format',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'minItems',
  'maxItems',
  'default',
]

/** A one-line summary of a schema (HTML): its type, a link for a $ref, constraints in brackets. */
function typeOf(schema: Json): string {
  const ref = schema['$ref']
  if (typeof ref === 'string') {
    const name = ref.split('/').at(-1) ?? ref
    return `<a href="#schema-${esc(name)}">${esc(name)}</a>`
  }
  for (const key of ['oneOf', 'anyOf', 'allOf']) {
    const options = schema[key]
    if (Array.isArray(options))
      return options.map((o) => typeOf(obj(o))).join(key === 'allOf' ? ' &amp; ' : ' | ')
  }
  if (Array.isArray(schema['enum']))
    return schema['enum'].map((v) => `<code>${esc(JSON.stringify(v))}</code>`).join(' | ')
  if (schema['const'] !== undefined) return `<code>${esc(JSON.stringify(schema['const']))}</code>`
  const types = Array.isArray(schema['type'])
    ? (schema['type'] as string[])
    : [typeof schema['type'] === 'string' ? schema['type'] : 'any']
  const base = types
    .map((t) => {
      if (t === 'array') return `array of ${typeOf(obj(schema['items']))}`
      if (
        t === 'object' &&
        schema['additionalProperties'] !== undefined &&
        schema['properties'] === undefined
      ) {
        const values = schema['additionalProperties']
        return `map of ${typeof values === 'object' ? typeOf(obj(values)) : 'any'}`
      }
      return esc(t)
    })
    .join(' | ')
  const constraints = CONSTRAINTS.filter((k) => schema[k] !== undefined).map(
    (k) => `${k}: ${esc(JSON.stringify(schema[k]))}`,
  )
  return constraints.length === 0 ? base : `${base} <small>[${constraints.join(', ')}]</small>`
}

/** A schema as a table of its properties (nested objects inline), or its one-line summary. */
function renderSchema(schema: Json, depth = 0): string {
  const properties = obj(schema['properties'])
  const names = Object.keys(properties)
  if (names.length === 0 || depth > 3) {
    const alternatives = schema['oneOf'] ?? schema['anyOf']
    if (Array.isArray(alternatives) && alternatives.some((a) => obj(a)['properties'] !== undefined)) {
      return `<p>One of:</p><ol>${alternatives.map((a) => `<li>${renderSchema(obj(a), depth + 1)}</li>`).join('')}</ol>`
    }
    return `<p>${typeOf(schema)}</p>`
  }
  const required = new Set(Array.isArray(schema['required']) ? (schema['required'] as string[]) : [])
  const rows = names.map((name) => {
    const prop = obj(properties[name])
    const nested = obj(prop['properties'])
    const inner = Object.keys(nested).length > 0 ? renderSchema(prop, depth + 1) : typeOf(prop)
    return `<tr><td><code>${esc(name)}</code>${required.has(name) ? ' <b>required</b>' : ''}</td><td>${inner}</td><td>${prose(prop['description'] ?? '')}</td></tr>`
  })
  const strict = schema['additionalProperties'] === false ? '<p><small>No other fields.</small></p>' : ''
  return `<table><tr><th>field</th><th>type</th><th>description</th></tr>${rows.join('')}</table>${strict}`
}

/** A body: its media types, and its schema inline (`schemas` given: a $ref opened) or as a link. */
function renderContent(content: unknown, schemas?: Json): string {
  return Object.entries(obj(content))
    .map(([type, media]) => {
      const schema = obj(obj(media)['schema'])
      const ref = schema['$ref']
      const opened =
        schemas !== undefined && typeof ref === 'string'
          ? obj(schemas[ref.split('/').at(-1) ?? ''])
          : undefined
      const body =
        opened === undefined ? renderSchema(schema) : `<p>${typeOf(schema)}</p>${renderSchema(opened)}`
      return `<p><code>${esc(type)}</code></p>${body}`
    })
    .join('')
}

function renderOperation(path: string, method: string, op: Json, schemas: Json): string {
  const id = esc(op['operationId'] ?? `${method}-${path}`)
  const params = Array.isArray(op['parameters']) ? (op['parameters'] as unknown[]).map(obj) : []
  const paramRows = params.map(
    (p) =>
      `<tr><td><code>${esc(p['name'])}</code>${p['required'] === true ? ' <b>required</b>' : ''}</td><td>${esc(p['in'])}</td><td>${typeOf(obj(p['schema']))}</td><td>${prose(p['description'] ?? obj(p['schema'])['description'] ?? '')}</td></tr>`,
  )
  const body = obj(op['requestBody'])
  const responses = Object.entries(obj(op['responses'])).map(([status, r]) => {
    const response = obj(r)
    const headers = Object.keys(obj(response['headers']))
    return `<tr><td>${esc(status)}</td><td>${prose(response['description'] ?? '')}${headers.length > 0 ? `<br><small>headers: ${esc(headers.join(', '))}</small>` : ''}</td><td>${renderContent(response['content'])}</td></tr>`
  })
  return `<section id="op-${id}">
<h3><span class="m ${esc(method)}">${esc(method.toUpperCase())}</span> <code>${esc(path)}</code></h3>
<p><b>${prose(op['summary'] ?? '')}</b></p>${op['description'] === undefined ? '' : `<p>${prose(op['description'])}</p>`}
${paramRows.length > 0 ? `<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th>description</th></tr>${paramRows.join('')}</table>` : ''}
${body['content'] === undefined ? '' : `<h4>Request body</h4>${renderContent(body['content'], schemas)}`}
<h4>Responses</h4><table><tr><th>status</th><th>meaning</th><th>body</th></tr>${responses.join('')}</table>
</section>`
}

const STYLE = `body{font:15px/1.5 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0;width:100%}td,th{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td p{margin:.2em 0}code{font-family:ui-monospace,monospace}section{border-top:1px solid #ccc;padding-top:.5em;margin-top:1.5em}
.m{display:inline-block;min-width:4.5em;text-align:center;border-radius:3px;color:#fff;font-size:.85em;padding:.1em .3em}
.get{background:#2b7bb9}.post{background:#2e8b57}.patch{background:#b8860b}.put{background:#8b5a2b}.delete{background:#b22222}`

export function renderReference(document: Json): string {
  const info = obj(document['info'])
  const components = obj(obj(document['components'])['schemas'])
  const operations: string[] = []
  const index: string[] = []
  for (const [path, item] of Object.entries(obj(document['paths']))) {
    for (const [method, op] of Object.entries(obj(item))) {
      const operation = obj(op)
      operations.push(renderOperation(path, method, operation, components))
      index.push(
        `<li><a href="#op-${esc(operation['operationId'] ?? '')}"><span class="m ${esc(method)}">${esc(method.toUpperCase())}</span> <code>${esc(path)}</code></a> ${prose(operation['summary'] ?? '')}</li>`,
      )
    }
  }
  const schemas = Object.entries(components).map(
    ([name, schema]) =>
      `<section id="schema-${esc(name)}"><h3>${esc(name)}</h3>${obj(schema)['description'] === undefined ? '' : `<p>${prose(obj(schema)['description'])}</p>`}${renderSchema(obj(schema))}</section>`,
  )
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(info['title'])}</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>${STYLE}</style></head><body>
<h1>${esc(info['title'])}</h1><p><small>version ${esc(info['version'])}, OpenAPI ${esc(document['openapi'] ?? '3.1.0')}</small></p><p>${prose(info['description'] ?? '')}</p>
<p>Authenticate with <code>Authorization: Bearer &lt;token&gt;</code>. The machine-readable document: <a href="openapi.json">openapi.json</a>.</p>
<h2>Operations</h2><ul>${index.join('')}</ul>${operations.join('\n')}
<h2>Schemas</h2>${schemas.join('\n')}</body></html>`
}
