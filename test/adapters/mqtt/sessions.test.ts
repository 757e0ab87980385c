// Sessions on the in-process cluster state: slots per tenant, one session per device (a second
// open closes the first), remote takeover notices, and revocation re-checks — with connections
// whose streams are plain PassThroughs.
import { PassThrough } from 'node:stream'
import type { Client } from 'aedes'
import { describe, expect, it } from 'vitest'
import { createConnectionTable, newConnection } from '../../../adapters/mqtt/connection.ts'
import type { Connection, Session } from '../../../adapters/mqtt/connection.ts'
import { createRevocation, tenantRefusal } from '../../../adapters/mqtt/revocation.ts'
import { createSessions } from '../../../adapters/mqtt/sessions.ts'
import type { ClusterState, TakeoverNotice } from '../../../core/cluster/cluster.ts'
import { createMemoryCluster } from '../../../core/cluster/memory.ts'
import { silentLogger } from '../../../core/log.ts'
import type { Device, RegistryChange, Tenant } from '../../../core/registry/model.ts'
import { waitUntil } from '../../helpers/wait.ts'

/** A connection whose end is handled the moment its stream closes (as ended() does for real). */
function connection(table: ReturnType<typeof createConnectionTable>): Connection {
  const stream = new PassThrough()
  const conn = newConnection({ listener: 'mqtt', remote: '127.0.0.1:1', stream })
  conn.client = { close: () => stream.destroy() } as unknown as Client
  stream.once('close', () => {
    conn.closed = true
    table.remove(conn)
    conn.markFinished()
  })
  table.add(conn)
  return conn
}

const session = (device: string, extra: Partial<Session> = {}): Session => ({
  tenant: 'acme',
  device,
  method: 'password',
  credentialId: `${device}-pw`,
  ...extra,
})

function setup(limit = 10, cluster: ClusterState = createMemoryCluster({ log: silentLogger })) {
  const table = createConnectionTable()
  const sessions = createSessions({
    cluster,
    table,
    maxConnectionsPerTenant: limit,
    closeTimeoutMs: 1_000,
    log: silentLogger,
  })
  return { table, sessions, cluster }
}

describe('createSessions', () => {
  it('takes a slot and the session; a second connection of the device closes the first', async () => {
    const { table, sessions, cluster } = setup()
    const first = connection(table)
    expect(await sessions.open(first, session('dev'))).toBeUndefined()
    expect([first.slot, first.claimed]).toEqual([true, true])
    const second = connection(table)
    expect(await sessions.open(second, session('dev'))).toBeUndefined()
    expect(first.closed).toBe(true)
    expect(first.closeReason).toBe('takeover')
    expect(first.dropWill).toBe(true)
    expect(table.byDevice('acme', 'dev')).toBe(second)
    await sessions.release(first)
    expect(await cluster.sessionOwner({ tenant: 'acme', device: 'dev' })).toEqual({
      instance: cluster.instance,
      connection: second.id,
    })
    expect(await cluster.slots('mqtt:acme')).toBe(1)
    await sessions.release(second)
    await sessions.release(second)
    expect(await cluster.slots('mqtt:acme')).toBe(0)
    expect(await cluster.sessionOwner({ tenant: 'acme', device: 'dev' })).toBeUndefined()
  })

  it('refuses beyond the tenant’s connection limit, holding nothing', async () => {
    const { table, sessions } = setup(1)
    expect(await sessions.open(connection(table), session('a'))).toBeUndefined()
    const refused = connection(table)
    expect(await sessions.open(refused, session('b'))).toBe('connection-limit')
    expect([refused.slot, refused.claimed]).toEqual([false, false])
  })

  it('gives back what it took when the connection closed meanwhile', async () => {
    const { table, sessions, cluster } = setup()
    const conn = connection(table)
    conn.closed = true
    expect(await sessions.open(conn, session('gone'))).toBe('unavailable')
    expect(await cluster.slots('mqtt:acme')).toBe(0)
  })

  it('closes the local connection named in a takeover notice from another instance', async () => {
    let notify: ((notice: TakeoverNotice) => void) | undefined
    const memory = createMemoryCluster({ log: silentLogger })
    const cluster: ClusterState = {
      ...memory,
      onTakeover: (listener) => ((notify = listener), () => undefined),
    }
    const { table, sessions } = setup(10, cluster)
    const conn = connection(table)
    await sessions.open(conn, session('dev'))
    sessions.listen()
    const previous = { instance: memory.instance, connection: conn.id }
    notify!({ tenant: 'acme', device: 'other', previous, by: { instance: 'b', connection: 'x' } })
    expect(conn.closed).toBe(false)
    notify!({ tenant: 'acme', device: 'dev', previous, by: { instance: 'b', connection: 'x' } })
    await conn.finished
    expect(conn.closeReason).toBe('takeover')
  })
})

describe('createRevocation', () => {
  const tenantRow = (fields: Partial<Tenant> = {}): Tenant =>
    ({ enabled: true, authMethods: ['password', 'token'], trustAnchors: [], ...fields }) as Tenant

  function revocationSetup(rows: {
    tenant?: Tenant | undefined
    device?: Partial<Device> | undefined
    fail?: boolean
  }) {
    const table = createConnectionTable()
    const closed: Array<[string, string]> = []
    const lookups = { device: 0 }
    const open = (s: Session): Connection => {
      const conn = connection(table)
      conn.session = s
      return conn
    }
    const onChange = createRevocation({
      table,
      tenant: async () => {
        if (rows.fail === true) throw new Error('registry down')
        return rows.tenant
      },
      findDevice: async () => {
        lookups.device++
        return rows.device as Device | undefined
      },
      close: (conn, reason) => closed.push([conn.session!.device, reason]),
      tenantChanged: async () => undefined,
      log: silentLogger,
    })
    return { open, onChange, closed, lookups }
  }
  const change = (fields: Partial<RegistryChange>): RegistryChange => ({
    op: 'updated',
    resource: 'device',
    tenant: 'acme',
    version: 2,
    ...fields,
  })

  it('closes sessions of a changed or deleted credential, not for a new one or another credential', async () => {
    const t = revocationSetup({})
    t.open(session('a'))
    t.open(session('a', { credentialId: 'other' }))
    t.open(session('b'))
    t.onChange(change({ resource: 'credential', op: 'created', device: 'a', id: 'a-pw' }))
    t.onChange(change({ resource: 'credential', op: 'deleted', device: 'a', id: 'a-pw' }))
    await waitUntil(() => t.closed.length > 0)
    expect(t.closed).toEqual([['a', 'revoked']])
  })

  it('closes the sessions of a disabled or deleted device and keeps them otherwise', async () => {
    for (const [device, expected] of [
      [{ enabled: false }, 1],
      [undefined, 1],
    ] as const) {
      const t = revocationSetup({ device })
      t.open(session('a'))
      t.onChange(change({ device: 'a' }))
      await waitUntil(() => t.closed.length === expected)
    }
    const kept = revocationSetup({ device: { enabled: true } })
    const conn = kept.open(session('a'))
    kept.onChange(change({ resource: 'api-token', id: 'x' }))
    kept.onChange(change({ device: 'a' }))
    await waitUntil(() => kept.lookups.device === 1)
    await new Promise((resolve) => setImmediate(resolve)) // the re-check's last step after the lookup
    expect(kept.closed).toEqual([])
    expect(conn.closed).toBe(false)
  })

  it('re-checks every session of a changed tenant, and closes them when the re-check fails', async () => {
    const t = revocationSetup({ tenant: tenantRow({ authMethods: ['token'] }) })
    t.open(session('pw'))
    t.open(session('tok', { method: 'token' }))
    t.onChange(change({ resource: 'tenant', device: undefined }))
    await waitUntil(() => t.closed.length === 1)
    expect(t.closed).toEqual([['pw', 'revoked']])

    const failing = revocationSetup({ fail: true })
    failing.open(session('x'))
    failing.onChange(change({ resource: 'tenant', device: undefined }))
    await waitUntil(() => failing.closed.length === 1)
  })

  it('tells why a session no longer holds under its tenant', () => {
    const now = new Date()
    expect(tenantRefusal(session('a'), undefined, now)).toBe('tenant deleted')
    expect(tenantRefusal(session('a'), tenantRow({ enabled: false }), now)).toBe('tenant disabled')
    expect(tenantRefusal(session('a'), tenantRow({ authMethods: ['x509'] }), now)).toBe(
      'method password no longer allowed',
    )
    expect(tenantRefusal(session('a'), tenantRow(), now)).toBeUndefined()
  })
})
