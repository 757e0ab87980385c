// The AsyncAPI document is valid AsyncAPI 3.0 and agrees with the code that names topics and types.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { Ajv } from 'ajv'
import { parse } from 'yaml'
import { describe, expect, it } from 'vitest'
import { eventTypes } from '../../core/events/build.ts'
import { topicNames } from '../../core/events/topics.ts'
import { encodeChange } from '../../core/registry/changes.ts'

const require = createRequire(import.meta.url)
const document = parse(readFileSync(new URL('../../schemas/asyncapi.yaml', import.meta.url), 'utf8')) as {
  channels: Record<string, { address: string }>
  components: { schemas: { cloudEventHeaders: { properties: { ce_type: { enum: string[] } } } } }
}

function validator() {
  const schema = require('@asyncapi/specs/schemas/3.0.0-without-$id.json') as object
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false })
  return ajv.compile(schema)
}

describe('schemas/asyncapi.yaml', () => {
  it('is a valid AsyncAPI 3.0 document', () => {
    const validate = validator()
    expect(validate(document), JSON.stringify(validate.errors, null, 2)).toBe(true)
  })

  it('fails validation when broken, so the check above can fail', () => {
    const broken = structuredClone(document) as Record<string, unknown>
    delete broken['info']
    expect(validator()(broken)).toBe(false)
  })

  it('names every pipeline topic the code names', () => {
    const topics = topicNames()
    const addresses = Object.values(document.channels).map((c) => c.address)
    // The tenant topic is a parameterized channel; check a concrete tenant maps onto it.
    expect(addresses).toContain(`${topics.prefix}.events.{tenant}`)
    expect(topics.events('acme')).toBe(`${topics.prefix}.events.acme`)
    expect(topics.tenantCopy('acme', 'alerts')).toBe(`${topics.prefix}.events.acme.alerts`)
    expect(addresses.sort()).toEqual(
      [
        topics.commands,
        topics.deadletter,
        `${topics.prefix}.events.{tenant}`,
        `${topics.prefix}.events.{tenant}.{copy}`,
        topics.ingress,
        topics.registry,
      ].sort(),
    )
  })

  it('lists exactly the event types the builder makes', () => {
    expect(document.components.schemas.cloudEventHeaders.properties.ce_type.enum.sort()).toEqual(
      Object.values(eventTypes).sort(),
    )
  })

  it('describes the registry changes the outbox relay writes', () => {
    const schemas = (document.components as unknown as { schemas: Record<string, object> }).schemas
    const ajv = new Ajv({ strict: false, allErrors: true })
    const data = ajv.compile(schemas['registryChangeData']!)
    const headers = ajv.compile(schemas['cloudEventHeaders']!)
    const key = /^[^/]+(\/[^/]+)?$/
    for (const change of [
      { op: 'updated', resource: 'credential', tenant: 'acme', device: 'dev:1', id: 'c1', version: 2 },
      { op: 'deleted', resource: 'api-token', tenant: 'acme', id: 't1', version: 1 },
    ] as const) {
      const record = encodeChange(change, 'tributary.registry')
      expect(data(JSON.parse(record.value!.toString())), JSON.stringify(data.errors)).toBe(true)
      const flat = Object.fromEntries([...record.headers!].map(([k, v]) => [k, v.toString()]))
      expect(headers(flat), JSON.stringify(headers.errors)).toBe(true)
      expect(record.key).toMatch(key)
    }
    expect(data({ op: 'renamed', resource: 'tenant', tenant: 'acme', version: 1 })).toBe(false)
  })
})
