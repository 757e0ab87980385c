// The JSON Schemas of event data in schemas/ describe what the code writes: each event the ingest
// builds is validated against its type's schema, and a broken document fails.
import { readFileSync } from 'node:fs'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { describe, expect, it } from 'vitest'
import { createIngest } from '../../adapters/adapter.ts'
import type { OutgoingRecord } from '../../core/bus/bus.ts'
import { buildFileUploadedEvent } from '../../core/events/build.ts'
import { buildStatusEvent } from '../../core/events/commands.ts'
import { appliedEventInput, buildConfigChangedEvent, deliveredEventInput } from '../../core/events/config.ts'
import { decode } from '../../core/events/kafka-codec.ts'
import { topicNames } from '../../core/events/topics.ts'
import { silentLogger } from '../../core/log.ts'

const schema = (name: string): object =>
  JSON.parse(readFileSync(new URL(`../../schemas/${name}`, import.meta.url), 'utf8')) as object

/** An ingest whose bus (a double at the port) keeps what it is given. */
function recordingIngest() {
  const records: OutgoingRecord[] = []
  const ingest = createIngest({
    bus: {
      publish: async (batch) => (
        records.push(...batch),
        batch.map((r, i) => ({ topic: r.topic, partition: 0, offset: i }))
      ),
    },
    topics: topicNames('tributary'),
    log: silentLogger,
  })
  return { ingest, records }
}

describe('schemas/io.tributary.connection.v1.json', () => {
  const validate = new Ajv2020({ strict: true, allErrors: true }).compile(
    schema('io.tributary.connection.v1.json'),
  )

  it('accepts the connection events the ingest writes', async () => {
    const { ingest, records } = recordingIngest()
    await ingest.connection({
      tenant: 'acme',
      device: 'd1',
      protocol: 'mqtt',
      status: 'connected',
      listener: 'mqtts',
      remote: '10.0.0.7:53211',
    })
    await ingest.connection({
      tenant: 'acme',
      device: 'd1',
      protocol: 'mqtt',
      status: 'disconnected',
      listener: 'mqtt-ws',
      reason: 'takeover',
    })
    expect(records).toHaveLength(2)
    for (const record of records) {
      const event = decode({ key: Buffer.from(record.key!), value: record.value, headers: record.headers! })
      expect(event.attributes.type).toBe('io.tributary.connection.v1')
      const data: unknown = JSON.parse(event.data!.toString())
      expect(validate(data), JSON.stringify(validate.errors)).toBe(true)
    }
  })

  it('refuses data that breaks it', () => {
    expect(validate({ status: 'connected' })).toBe(false)
    expect(validate({ status: 'online', listener: 'mqtt' })).toBe(false)
    expect(validate({ status: 'disconnected', listener: 'mqtt', reason: 'Bad Reason' })).toBe(false)
    expect(validate({ status: 'connected', listener: 'mqtt', extra: 1 })).toBe(false)
  })
})

describe('schemas/io.tributary.command.status.v1.json', () => {
  const validate = new Ajv2020({ strict: true, allErrors: true }).compile(
    schema('io.tributary.command.status.v1.json'),
  )
  const command = { id: '0193a0c2-0000-7000-8000-000000000001', tenant: 'acme', device: 'd1', name: 'reboot' }

  it('accepts the status events the router and dispatcher write', () => {
    const inputs = [
      { command, status: 'accepted' as const, protocol: 'api' as const },
      {
        command: { ...command, requestId: 'r-1' },
        status: 'delivered' as const,
        protocol: 'mqtt' as const,
        via: 'gw-1',
      },
      { command, status: 'expired' as const, reason: 'not-connected', protocol: 'kafka' as const },
      { command, status: 'failed' as const, reason: 'ttn-403', protocol: 'ttn' as const },
    ]
    for (const input of inputs) {
      const event = buildStatusEvent(input)
      expect(event.attributes.type).toBe('io.tributary.command.status.v1')
      const data: unknown = JSON.parse(event.data!.toString())
      expect(validate(data), JSON.stringify(validate.errors)).toBe(true)
    }
  })

  it('refuses data that breaks it', () => {
    expect(validate({ command: 'c', name: 'reboot' })).toBe(false)
    expect(validate({ command: 'c', name: 'reboot', status: 'lost' })).toBe(false)
    expect(validate({ command: 'c', name: 'a b', status: 'failed' })).toBe(false)
    expect(validate({ command: 'c', name: 'reboot', status: 'failed', reason: 'Device Gone' })).toBe(false)
  })
})

describe('schemas/io.tributary.config.delivered.v1.json and io.tributary.config.applied.v1.json', () => {
  const ajv = new Ajv2020({ strict: true, allErrors: true })
  const delivered = ajv.compile(schema('io.tributary.config.delivered.v1.json'))
  const applied = ajv.compile(schema('io.tributary.config.applied.v1.json'))
  const configId = 'q3Jm2cH1yF8x0eZ4b7QK9w'

  it('accepts the configuration events the ingest writes', async () => {
    const { ingest, records } = recordingIngest()
    const base = { tenant: 'acme', device: 'd1', protocol: 'http' } as const
    await ingest.event(deliveredEventInput({ ...base, configId }))
    await ingest.event(appliedEventInput({ ...base, configId, statusCode: 200, reasonPhrase: null }))
    await ingest.event(appliedEventInput({ ...base, configId, statusCode: 422, reasonPhrase: 'no such key' }))
    const events = records.map((r) =>
      decode({ key: Buffer.from(r.key!), value: r.value, headers: r.headers! }),
    )
    expect(events.map((e) => [e.attributes.type, e.attributes.subject])).toEqual([
      ['io.tributary.config.delivered.v1', 'config'],
      ['io.tributary.config.applied.v1', 'config'],
      ['io.tributary.config.applied.v1', 'config'],
    ])
    const [first, ...rest] = events.map((e) => JSON.parse(e.data!.toString()) as unknown)
    expect(delivered(first), JSON.stringify(delivered.errors)).toBe(true)
    for (const data of rest) expect(applied(data), JSON.stringify(applied.errors)).toBe(true)
  })

  it('refuses data that breaks them', () => {
    expect(delivered({})).toBe(false)
    expect(delivered({ configId: 'short' })).toBe(false)
    expect(applied({ configId, statusCode: 200 })).toBe(false)
    expect(applied({ configId, statusCode: 300, reasonPhrase: null })).toBe(false)
    expect(applied({ configId, statusCode: 200, reasonPhrase: null, extra: 1 })).toBe(false)
  })
})

describe('schemas/io.tributary.config.changed.v1.json', () => {
  const validate = new Ajv2020({ strict: true, allErrors: true }).compile(
    schema('io.tributary.config.changed.v1.json'),
  )
  const change = {
    tenant: 'acme',
    device: 'd1',
    configId: 'q3Jm2cH1yF8x0eZ4b7QK9w',
    previousConfigId: 'RBNvo1WzZ4oRRq0W9-hknp',
    time: new Date('2030-01-01T00:00:00Z'),
  }

  it('accepts the event the fan-out writes', () => {
    const event = buildConfigChangedEvent(change)
    expect(event.attributes).toMatchObject({
      type: 'io.tributary.config.changed.v1',
      subject: 'config',
      protocol: 'api',
      tenant: 'acme',
      device: 'd1',
      datacontenttype: 'application/json',
    })
    const data = JSON.parse(event.data!.toString()) as unknown
    expect(data).toEqual({ configId: change.configId, previousConfigId: change.previousConfigId })
    expect(validate(data), JSON.stringify(validate.errors)).toBe(true)
  })

  it('refuses data that breaks it', () => {
    expect(validate({ configId: change.configId })).toBe(false)
    expect(validate({ configId: change.configId, previousConfigId: null })).toBe(false)
    expect(validate({ configId: 'short', previousConfigId: change.previousConfigId })).toBe(false)
    const { configId, previousConfigId } = change
    expect(validate({ configId, previousConfigId, extra: 1 })).toBe(false)
  })
})

describe('schemas/io.tributary.file.uploaded.v1.json', () => {
  const validate = new Ajv2020({ strict: true, allErrors: true }).compile(
    schema('io.tributary.file.uploaded.v1.json'),
  )

  it('accepts the file uploaded events core/events builds, and refuses a malformed one', () => {
    const event = buildFileUploadedEvent({
      tenant: 'acme',
      device: 'd1',
      protocol: 'http',
      file: {
        id: 'AbCdEf012345',
        name: 'logs/boot.txt',
        size: 42,
        sha256: 'ab'.repeat(32),
        contentType: 'text/plain',
      },
      dataref: 's3://files/acme/d1/AbCdEf012345',
    })
    expect(event.attributes.type).toBe('io.tributary.file.uploaded.v1')
    expect(event.attributes['dataref']).toBe('s3://files/acme/d1/AbCdEf012345')
    const data: unknown = JSON.parse(event.data!.toString())
    expect(validate(data), JSON.stringify(validate.errors)).toBe(true)
    expect(validate({ ...(data as object), sha256: 'not-hex' })).toBe(false)
  })
})
