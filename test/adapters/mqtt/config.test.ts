// The adapter's settings from TRIBUTARY_* variables, and the start-up errors that name the
// variables to fix when the TLS listener is enabled without a usable certificate and key.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  DRAIN_TIMEOUT_MS,
  LAST_SEEN_INTERVAL_MS,
  mqttConfig,
  readTlsFiles,
} from '../../../adapters/mqtt/config.ts'
import { createTlsContexts } from '../../../adapters/mqtt/tls-gate.ts'
import { loadConfig } from '../../../core/config/index.ts'
import { isTributaryError } from '../../../core/errors.ts'

const dir = mkdtempSync(join(tmpdir(), 'tributary-mqtt-config-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a failure')
}

describe('mqttConfig', () => {
  it('maps the variables, defaults included', () => {
    const config = mqttConfig(
      loadConfig({
        TRIBUTARY_MQTT_PORT: '0',
        TRIBUTARY_MQTTS_ENABLED: 'true',
        TRIBUTARY_MQTT_PUBLISH_RATE: '5',
      }),
    )
    expect(config).toMatchObject({
      host: '0.0.0.0',
      tcp: { enabled: true, port: 0, portVariable: 'TRIBUTARY_MQTT_PORT' },
      tls: { enabled: true, port: 8883, portVariable: 'TRIBUTARY_MQTTS_PORT' },
      ws: { enabled: true, port: 8083, portVariable: 'TRIBUTARY_MQTT_WS_PORT' },
      maxPayloadBytes: 262_144,
      publishRate: 5,
      maxConnectionsPerTenant: 10_000,
      connectTimeoutMs: 10_000,
      drainTimeoutMs: DRAIN_TIMEOUT_MS,
      lastSeenIntervalMs: LAST_SEEN_INTERVAL_MS,
    })
  })
})

describe('readTlsFiles and createTlsContexts', () => {
  const tls = { enabled: true, port: 0, portVariable: 'TRIBUTARY_MQTTS_PORT' }

  it('names both variables when neither is set', async () => {
    const err = await failure(readTlsFiles(tls))
    expect(isTributaryError(err, 'CONFIG_INVALID')).toBe(true)
    expect(err.message).toContain('TRIBUTARY_MQTTS_CERT_FILE and TRIBUTARY_MQTTS_KEY_FILE are not set')
    expect(err.message).toContain('TRIBUTARY_MQTTS_ENABLED=false')
  })

  it('names the one missing, and a file that cannot be read', async () => {
    const cert = join(dir, 'cert.pem')
    writeFileSync(cert, 'not a certificate')
    expect((await failure(readTlsFiles({ ...tls, certFile: cert }))).message).toContain(
      'TRIBUTARY_MQTTS_KEY_FILE is not set',
    )
    const missing = await failure(readTlsFiles({ ...tls, certFile: cert, keyFile: join(dir, 'nope.pem') }))
    expect(missing.message).toBe(`TRIBUTARY_MQTTS_KEY_FILE=${join(dir, 'nope.pem')} cannot be read (ENOENT)`)
  })

  it('refuses files that do not make a TLS server identity', async () => {
    writeFileSync(join(dir, 'key.pem'), 'not a key')
    const files = await readTlsFiles({
      ...tls,
      certFile: join(dir, 'cert.pem'),
      keyFile: join(dir, 'key.pem'),
    })
    expect(() => createTlsContexts(files)).toThrow(
      /TRIBUTARY_MQTTS_CERT_FILE \/ TRIBUTARY_MQTTS_KEY_FILE do not make/,
    )
  })
})
