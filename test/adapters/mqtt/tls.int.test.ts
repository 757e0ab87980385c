// The TLS listener: passwords over TLS, client certificates checked against the tenant's trust
// anchors (tenant from the username or from the certificate's issuer), TLS-PSK with mosquitto_pub
// (TLS 1.3: identity in the ClientHello) and with Node's TLS 1.2 client (identity in the
// ClientKeyExchange, through the inspecting proxy), and anchors revoked under a live session.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { ConnectionOptions } from 'node:tls'
import type { IClientOptions } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPki } from '../../fixtures/pki.ts'
import type { Pki } from '../../fixtures/pki.ts'
import { mosquitto } from '../../helpers/mqtt.ts'
import { waitUntil } from '../../helpers/wait.ts'
import type { Backend, Instance } from './harness.ts'
import {
  closed,
  connect,
  connectionData,
  deviceWithPassword,
  isConnection,
  isTelemetry,
  login,
  newTenant,
  ofDevice,
  refusal,
  startBackend,
  startInstance,
} from './harness.ts'

let backend: Backend
let instance: Instance
let pki: Pki

beforeAll(async () => {
  pki = await createPki()
  backend = await startBackend()
  instance = await startInstance(backend, { pki })
})

afterAll(async () => {
  await instance?.stop()
  await backend?.close()
  pki?.remove()
})

const tlsUrl = (): string => `mqtts://127.0.0.1:${instance.ports['mqtts']}`
const trustServer = () => ({ ca: readFileSync(pki.serverCa.certFile), servername: 'localhost' })
const withCert = (cert: { certFile: string; keyFile: string }) => ({
  ...trustServer(),
  cert: readFileSync(cert.certFile),
  key: readFileSync(cert.keyFile),
})

async function certTenant(authMethods?: Array<'password' | 'x509' | 'psk' | 'token'>): Promise<string> {
  const tenant = newTenant()
  await backend.registry.createTenant(tenant, {
    enabled: true,
    trustAnchors: [pki.deviceCa.pem],
    ...(authMethods === undefined ? {} : { authMethods }),
  })
  return tenant
}

describe('MQTT over TLS', () => {
  it('takes a password over TLS and reports the mqtts listener', async () => {
    const tenant = newTenant()
    await backend.registry.createTenant(tenant, { enabled: true })
    await deviceWithPassword(backend, tenant, 'dev')
    const client = await connect(tlsUrl(), { ...login('dev', tenant), ...trustServer() })
    await client.publishAsync('secure/ch', 'over tls', { qos: 1 })
    await client.endAsync()
    const events = await backend.waitFor(ofDevice(tenant, 'dev'), 3)
    expect(events.filter(isConnection).map((r) => connectionData(r).listener)).toEqual(['mqtts', 'mqtts'])
    expect(events.find(isTelemetry)!.data).toBe('over tls')
  })

  it("takes a client certificate signed by the tenant's anchor, with the tenant from the username or from the issuer", async () => {
    const tenant = await certTenant()
    await backend.registry.createDevice(tenant, 'cert-1', { enabled: true })
    await backend.registry.createCredential(tenant, 'cert-1', { type: 'x509', subjectCn: 'cert-1' })
    const cert = await pki.issueDevice('cert-1')

    for (const username of [`cert-1@${tenant}`, `@${tenant}`, undefined]) {
      const client = await connect(tlsUrl(), {
        ...withCert(cert),
        ...(username === undefined ? {} : { username }),
      })
      await client.publishAsync('cert/ch', username ?? 'by issuer', { qos: 1 })
      await client.endAsync()
    }
    const telemetry = await backend.waitFor((r) => ofDevice(tenant, 'cert-1')(r) && isTelemetry(r), 3)
    expect(telemetry.map((r) => r.data)).toEqual([`cert-1@${tenant}`, `@${tenant}`, 'by issuer'])

    // Once a second tenant trusts the same CA, the issuer no longer tells the tenant: name it.
    await certTenant()
    // The index follows registry changes as they arrive: the refusal shows once this one has.
    await waitUntil(async () => (await refusal(tlsUrl(), withCert(cert))) === 4)
    expect(
      await instance.metric('tributary_mqtt_refusals_total', { reason: 'certificate-tenant-ambiguous' }),
    ).toBe(1)
    const named = await connect(tlsUrl(), { ...withCert(cert), username: `@${tenant}` })
    await named.endAsync()
  })

  it('refuses certificates from a CA the tenant does not trust, of unknown devices, or naming another device, with CONNACK 4', async () => {
    const tenant = await certTenant()
    await backend.registry.createDevice(tenant, 'cert-2', { enabled: true })
    await backend.registry.createCredential(tenant, 'cert-2', { type: 'x509', subjectCn: 'cert-2' })
    const rogue = await pki.issueDevice('cert-2', 'rogue')
    const stranger = await pki.issueDevice('not-registered')
    const good = await pki.issueDevice('cert-2')
    const refusals = {
      rogueWithUsername: await refusal(tlsUrl(), { ...withCert(rogue), username: `cert-2@${tenant}` }),
      rogueByIssuer: await refusal(tlsUrl(), withCert(rogue)),
      unknownDevice: await refusal(tlsUrl(), { ...withCert(stranger), username: `@${tenant}` }),
      otherDevice: await refusal(tlsUrl(), { ...withCert(good), username: `someone-else@${tenant}` }),
    }
    expect(refusals).toEqual({ rogueWithUsername: 4, rogueByIssuer: 4, unknownDevice: 4, otherDevice: 4 })
    for (const reason of [
      'certificate-invalid',
      'certificate-tenant-unknown',
      'unknown',
      'identity-mismatch',
    ]) {
      expect(await instance.metric('tributary_mqtt_refusals_total', { reason }), reason).toBeGreaterThan(0)
    }
  })

  it('enforces a certificates-only policy: a password is refused with CONNACK 5, the certificate taken', async () => {
    const tenant = await certTenant(['x509'])
    await deviceWithPassword(backend, tenant, 'strict')
    await backend.registry.createCredential(tenant, 'strict', { type: 'x509', subjectCn: 'strict' })
    expect(await refusal(tlsUrl(), { ...login('strict', tenant), ...trustServer() })).toBe(5)
    const client = await connect(tlsUrl(), {
      ...withCert(await pki.issueDevice('strict')),
      username: `@${tenant}`,
    })
    await client.endAsync()
    await backend.waitFor((r) => ofDevice(tenant, 'strict')(r) && isConnection(r), 2)
  })

  it('closes a certificate session when the tenant drops the trust anchor that signed it', async () => {
    const tenant = await certTenant()
    await backend.registry.createDevice(tenant, 'cert-3', { enabled: true })
    await backend.registry.createCredential(tenant, 'cert-3', { type: 'x509', subjectCn: 'cert-3' })
    const client = await connect(tlsUrl(), {
      ...withCert(await pki.issueDevice('cert-3')),
      username: `@${tenant}`,
    })
    const gone = closed(client)
    await backend.registry.updateTenant(tenant, { trustAnchors: [] })
    await gone
    await client.endAsync(true)
    const events = await backend.waitFor((r) => ofDevice(tenant, 'cert-3')(r) && isConnection(r), 2)
    expect(connectionData(events[1]!).reason).toBe('revoked')
  })
})

describe('MQTT over TLS-PSK', () => {
  async function pskDevice(): Promise<{ tenant: string; identity: string; key: string }> {
    const tenant = newTenant()
    await backend.registry.createTenant(tenant, { enabled: true })
    await backend.registry.createDevice(tenant, 'psk-1', { enabled: true })
    const { secret } = await backend.registry.createCredential(tenant, 'psk-1', { type: 'psk' })
    return { tenant, identity: `psk-1@${tenant}`, key: secret! }
  }

  it('takes mosquitto_pub --psk --psk-identity and refuses a wrong key or an unknown identity', async () => {
    const { tenant, identity, key } = await pskDevice()
    const port = ['-h', '127.0.0.1', '-p', String(instance.ports['mqtts'])]
    const ok = await mosquitto('mosquitto_pub', [
      ...port,
      '--psk-identity',
      identity,
      '--psk',
      key,
      '-q',
      '1',
      '-t',
      'psk/ch',
      '-m',
      'psk ok',
    ])
    expect(ok).toMatchObject({ code: 0, stderr: '' })
    const [event] = await backend.waitFor((r) => ofDevice(tenant, 'psk-1')(r) && isTelemetry(r))
    expect(event!.data).toBe('psk ok')

    const wrongKey = await mosquitto('mosquitto_pub', [
      ...port,
      '--psk-identity',
      identity,
      '--psk',
      randomBytes(16).toString('hex'),
      '-t',
      'psk/ch',
      '-m',
      'no',
    ])
    const unknown = await mosquitto('mosquitto_pub', [
      ...port,
      '--psk-identity',
      `ghost@${tenant}`,
      '--psk',
      key,
      '-t',
      'psk/ch',
      '-m',
      'no',
    ])
    expect(wrongKey.code).not.toBe(0)
    expect(unknown.code).not.toBe(0)
    expect(
      await instance.metric('tributary_mqtt_refusals_total', { reason: 'psk-bad-secret' }),
    ).toBeGreaterThan(0)
    expect(await instance.metric('tributary_mqtt_refusals_total', { reason: 'psk-unknown' })).toBeGreaterThan(
      0,
    )
    expect(backend.received.some((r) => r.data === 'no')).toBe(false)
    expect(JSON.stringify(instance.logs)).not.toContain(key)
  })

  it('takes a TLS 1.2 PSK client, whose identity arrives in the ClientKeyExchange', async () => {
    const { tenant, identity, key } = await pskDevice()
    // MQTT.js hands these to tls.connect; its option type does not list them all.
    const tlsOptions: ConnectionOptions = {
      maxVersion: 'TLSv1.2',
      ciphers: 'PSK-AES128-GCM-SHA256',
      pskCallback: () => ({ psk: Buffer.from(key, 'hex'), identity }),
      checkServerIdentity: () => undefined,
    }
    const client = await connect(tlsUrl(), tlsOptions as IClientOptions)
    const socket = client.stream as unknown as { getProtocol(): string; getCipher(): { name: string } }
    expect([socket.getProtocol(), socket.getCipher().name]).toEqual(['TLSv1.2', 'PSK-AES128-GCM-SHA256'])
    await client.publishAsync('psk12/ch', 'tls 1.2 psk', { qos: 1 })
    // A server-side close reaches the client through the proxy: a second connection takes over.
    const gone = closed(client)
    const second = await connect(tlsUrl(), tlsOptions as IClientOptions)
    await gone
    await second.endAsync()
    await client.endAsync(true)
    const events = await backend.waitFor(ofDevice(tenant, 'psk-1'), 5)
    expect(events.find(isTelemetry)!.data).toBe('tls 1.2 psk')
    expect(events.filter(isConnection).map((r) => connectionData(r).reason ?? 'connected')).toEqual([
      'connected',
      'takeover',
      'connected',
      'client-disconnect',
    ])
  })
})
