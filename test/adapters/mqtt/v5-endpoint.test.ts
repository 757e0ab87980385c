// The MQTT 5 endpoint's protocol rules, one normative statement per test, on an in-memory stream
// pair with doubles at its ports (the CONNECT and PUBLISH handlers): what it answers, in which
// order, and which reason code ends a connection. A fuzz test feeds random and mutated bytes.
import { randomBytes } from 'node:crypto'
import { duplexPair } from 'node:stream'
import type { Duplex } from 'node:stream'
import { generate, parser as createParser } from 'mqtt-packet'
import type { IConnectPacket, IPublishPacket, Packet } from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import type { ConnectHandler } from '../../../adapters/mqtt/connect.ts'
import { newConnection } from '../../../adapters/mqtt/connection.ts'
import type { Connection } from '../../../adapters/mqtt/connection.ts'
import type { IncomingPublish, PublishHandler, PublishResult } from '../../../adapters/mqtt/publish.ts'
import { createRefusals } from '../../../adapters/mqtt/refusals.ts'
import { RECEIVE_MAXIMUM, serveV5 } from '../../../adapters/mqtt/v5/endpoint.ts'
import { MAX_WAITING, SERVER_TOPIC_ALIASES } from '../../../adapters/mqtt/v5/outbound.ts'
import { MAX_FILTERS } from '../../../adapters/mqtt/v5/subscribe.ts'
import { createLogger } from '../../../core/log.ts'

const log = createLogger({ level: 'silent' })
const MAX_PACKET = 1024

interface Harness {
  readonly conn: Connection
  readonly client: Duplex
  readonly received: Packet[]
  readonly published: IncomingPublish[]
  readonly refused: string[]
  /** Filters the endpoint reported granted, and how many UNSUBSCRIBEs removed any. */
  readonly subscribed: string[]
  readonly unsubscribed: () => number
  /** Resolves with the next packet the server sends matching `cmd`. */
  next(cmd: Packet['cmd']): Promise<Packet>
  send(packet: Packet): void
  /** Resolves once the server closed its end. */
  readonly closed: Promise<void>
}

interface Options {
  readonly refuse?: boolean
  readonly publish?: (packet: IncomingPublish) => Promise<PublishResult>
}

function start(options: Options = {}): Harness {
  const [server, client] = duplexPair()
  const conn = newConnection({ listener: 'mqtt', remote: '127.0.0.1:1', stream: server })
  const received: Packet[] = []
  const published: IncomingPublish[] = []
  const refused: string[] = []
  const subscribed: string[] = []
  let unsubscribed = 0
  const waiters: Array<{ cmd: Packet['cmd']; resolve: (p: Packet) => void }> = []
  const parser = createParser({ protocolVersion: 5 })
  parser.on('packet', (packet: Packet) => {
    received.push(packet)
    const at = waiters.findIndex((w) => w.cmd === packet.cmd)
    if (at >= 0) waiters.splice(at, 1)[0]!.resolve(packet)
  })
  client.on('data', (chunk: Buffer) => parser.parse(chunk))
  const connect: ConnectHandler = async (c, username) => {
    if (options.refuse === true || username === 'bad') return 'bad-secret'
    c.session = { tenant: 't', device: 'd', method: 'password', credentialId: 'c' }
    c.announced = true
    return undefined
  }
  const publish: PublishHandler = async (_c, _s, packet) => {
    published.push(packet)
    return options.publish?.(packet) ?? { action: 'ack' }
  }
  serveV5(conn, {
    connect,
    routes: {
      publish,
      // The device's own commands only, at QoS 1 at most (the 3.1.1 modules' rule, in small).
      authorizeSubscribe: async (_c, _s, filter, qos) =>
        filter.startsWith('command/') ? (Math.min(qos, 1) as 0 | 1) : null,
      subscribed: (_c, filters) => void subscribed.push(...filters),
      unsubscribed: () => void unsubscribed++,
    },
    refusals: createRefusals({ refused: (reason) => void refused.push(reason) }, log),
    metrics: { ackDuration: () => undefined },
    track: (_c, work) => work,
    maxPacketBytes: MAX_PACKET,
    connectTimeoutMs: 5_000,
    drainTimeoutMs: 5_000,
    log,
  })
  const closed = new Promise<void>((resolve) => server.once('close', () => resolve()))
  return {
    conn,
    client,
    received,
    published,
    refused,
    subscribed,
    unsubscribed: () => unsubscribed,
    next: (cmd) => new Promise((resolve) => waiters.push({ cmd, resolve })),
    send: (packet) => void client.write(generate(packet, { protocolVersion: 5 })),
    closed,
  }
}

const codeOf = (packet: Packet): number | undefined => (packet as { reasonCode?: number }).reasonCode

const CONNECT: IConnectPacket = {
  cmd: 'connect',
  protocolId: 'MQTT',
  protocolVersion: 5,
  clean: true,
  clientId: 'c1',
  keepalive: 60,
  username: 'd@t',
  password: Buffer.from('secret'),
}

async function connected(options: Options = {}, connect: Partial<IConnectPacket> = {}): Promise<Harness> {
  const h = start(options)
  const connack = h.next('connack')
  h.send({ ...CONNECT, ...connect })
  expect(codeOf(await connack)).toBe(0)
  return h
}

/** The reason code of the DISCONNECT the server ended with. */
async function disconnectCode(h: Harness): Promise<number | undefined> {
  const packet = (await h.next('disconnect')) as { reasonCode?: number }
  await h.closed
  return packet.reasonCode
}

const publish = (topic: string, messageId: number, extra: Record<string, unknown> = {}): Packet => ({
  cmd: 'publish',
  topic,
  payload: Buffer.from('x'),
  qos: 1,
  dup: false,
  retain: false,
  messageId,
  ...extra,
})

describe('MQTT 5 endpoint: CONNECT', () => {
  it('[MQTT-3.1.0-1] closes a connection whose first packet is not a CONNECT, without CONNACK', async () => {
    const h = start()
    h.send({ cmd: 'pingreq' })
    await h.closed
    expect(h.received).toEqual([])
    expect(h.refused).toContain('protocol-error')
  })

  it('[MQTT-3.2.2-7] sends CONNACK 0x86 to a refused CONNECT and closes', async () => {
    const h = start({ refuse: true })
    const connack = h.next('connack')
    h.send(CONNECT)
    expect(codeOf(await connack)).toBe(0x86)
    await h.closed
  })

  it('answers enhanced authentication with CONNACK 0x8C (§4.12: not offered)', async () => {
    const h = start()
    const connack = h.next('connack')
    h.send({ ...CONNECT, properties: { authenticationMethod: 'SCRAM-SHA-1' } })
    expect(codeOf(await connack)).toBe(0x8c)
    await h.closed
  })

  it('[MQTT-3.1.0-2] ends a second CONNECT with DISCONNECT 0x82', async () => {
    const h = await connected()
    h.send(CONNECT)
    expect(await disconnectCode(h)).toBe(0x82)
  })

  it('[MQTT-3.2.2-21] replaces a keep alive above an hour with Server Keep Alive', async () => {
    const h = start()
    const connack = h.next('connack')
    h.send({ ...CONNECT, keepalive: 65_000 })
    expect((await connack) as { properties?: { serverKeepAlive?: number } }).toMatchObject({
      properties: { serverKeepAlive: 3600 },
    })
  })

  it('[MQTT-3.1.2-22] ends a connection silent for 1.5 keep alive periods with DISCONNECT 0x8D', async () => {
    const h = await connected({}, { keepalive: 1 })
    expect(await disconnectCode(h)).toBe(0x8d)
    expect(h.conn.closeReason).toBe('keepalive-timeout')
  })

  it('answers PINGREQ with PINGRESP', async () => {
    const h = await connected()
    const pong = h.next('pingresp')
    h.send({ cmd: 'pingreq' })
    expect((await pong).cmd).toBe('pingresp')
  })
})

describe('MQTT 5 endpoint: PUBLISH', () => {
  it('[MQTT-4.6.0-2] sends PUBACKs in the order the PUBLISHes came, whatever order they finish in', async () => {
    const releases: Array<() => void> = []
    const h = await connected({
      publish: () => new Promise((resolve) => releases.push(() => resolve({ action: 'ack' }))),
    })
    for (let id = 1; id <= 3; id++) h.send(publish(`t/${id}`, id))
    while (releases.length < 3) await new Promise((r) => setImmediate(r))
    const acks: number[] = []
    const all = new Promise<void>((resolve) => {
      const parser = createParser({ protocolVersion: 5 })
      parser.on('packet', (p: Packet) => {
        if (p.cmd === 'puback') acks.push(p.messageId ?? 0)
        if (acks.length === 3) resolve()
      })
      h.client.on('data', (chunk: Buffer) => parser.parse(chunk))
    })
    releases[2]!()
    releases[0]!()
    releases[1]!()
    await all
    expect(acks).toEqual([1, 2, 3])
  })

  it('[MQTT-3.4.2-1] answers a refusal with its PUBACK reason code and a reason string, and keeps the connection', async () => {
    const h = await connected({
      publish: async (p) =>
        p.topic === 'no' ? { action: 'disconnect', reason: 'gateway-not-allowed' } : { action: 'ack' },
    })
    const refused = h.next('puback')
    h.send(publish('no', 1))
    expect(await refused).toMatchObject({
      reasonCode: 0x87,
      properties: { reasonString: 'gateway-not-allowed' },
    })
    const accepted = h.next('puback')
    h.send(publish('yes', 2))
    expect(await accepted).toMatchObject({ messageId: 2, reasonCode: 0 })
  })

  it('[MQTT-3.1.2-29] leaves the reason string out when the client asked for no problem information', async () => {
    const h = await connected(
      { publish: async () => ({ action: 'disconnect', reason: 'rate-limited' }) },
      { properties: { requestProblemInformation: false } },
    )
    const ack = h.next('puback')
    h.send(publish('t', 1))
    const packet = (await ack) as { reasonCode?: number; properties?: unknown }
    expect(packet.reasonCode).toBe(0x97)
    expect(packet.properties).toBeUndefined()
  })

  it('[MQTT-3.3.2-8] ends a Topic Alias of 0 with DISCONNECT 0x94', async () => {
    const h = await connected()
    h.send(publish('t', 1, { properties: { topicAlias: 0 } }))
    expect(await disconnectCode(h)).toBe(0x94)
  })

  it('[MQTT-3.3.2-9] ends a Topic Alias above the Topic Alias Maximum with DISCONNECT 0x94', async () => {
    const h = await connected()
    h.send(publish('t', 1, { properties: { topicAlias: 17 } }))
    expect(await disconnectCode(h)).toBe(0x94)
  })

  it('ends an empty Topic Name with an alias never set with DISCONNECT 0x82 (§3.3.2.3.4)', async () => {
    const h = await connected()
    h.send(publish('', 1, { properties: { topicAlias: 5 } }))
    expect(await disconnectCode(h)).toBe(0x82)
    expect(h.published).toEqual([])
  })

  it('ends QoS 2 with DISCONNECT 0x9B and a retained PUBLISH with 0x9A (CONNACK said Maximum QoS 1, Retain Available 0)', async () => {
    const h = await connected()
    h.send(publish('t', 1, { qos: 2 }))
    expect(await disconnectCode(h)).toBe(0x9b)
    const r = await connected()
    r.send(publish('t', 1, { retain: true }))
    expect(await disconnectCode(r)).toBe(0x9a)
  })

  it(`ends a client over the Receive Maximum (${RECEIVE_MAXIMUM}) with DISCONNECT 0x93 (§3.3.4)`, async () => {
    const h = await connected({ publish: () => new Promise(() => undefined) })
    for (let id = 1; id <= RECEIVE_MAXIMUM + 1; id++) h.send(publish('t', id))
    expect(await disconnectCode(h)).toBe(0x93)
  })

  it('says DISCONNECT 0x95 when the adapter ends the connection for a packet over the Maximum Packet Size', async () => {
    const h = await connected()
    h.conn.end?.('packet-too-large')
    expect(await disconnectCode(h)).toBe(0x95)
  })

  it('[MQTT-3.14.4-3] discards the will on DISCONNECT 0x00 and publishes it when the connection drops', async () => {
    const will = { topic: 'last/words', payload: Buffer.from('bye'), qos: 0 as const, retain: false }
    const clean = await connected({}, { will })
    clean.send({ cmd: 'disconnect', reasonCode: 0 })
    await clean.closed
    expect(clean.published).toEqual([])

    const withWill = await connected({}, { will })
    withWill.send({ cmd: 'disconnect', reasonCode: 0x04 })
    await withWill.closed
    expect(withWill.published.map((p) => p.topic)).toEqual(['last/words'])

    const dropped = await connected({}, { will })
    dropped.client.destroy()
    await dropped.closed
    expect(dropped.published.map((p) => p.topic)).toEqual(['last/words'])
  })
})

/** SUBACK reason codes (or granted QoS) of a SUBSCRIBE, in order. */
async function suback(h: Harness, filters: Array<[string, 0 | 1 | 2]>, messageId = 1): Promise<number[]> {
  const answer = h.next('suback')
  h.send({
    cmd: 'subscribe',
    messageId,
    subscriptions: filters.map(([topic, qos]) => ({ topic, qos })),
  })
  const packet = (await answer) as { messageId?: number; granted: number[] }
  expect(packet.messageId).toBe(messageId)
  return packet.granted
}

describe('MQTT 5 endpoint: SUBSCRIBE and UNSUBSCRIBE', () => {
  it('[MQTT-3.8.4-1] [MQTT-3.8.4-2] [MQTT-3.9.3-1] answers one code per filter in order: granted QoS (at most 1), 0x87, 0x8F', async () => {
    const h = await connected()
    expect(
      await suback(h, [
        ['command/#', 2],
        ['command/+', 0],
        ['someone/else', 1],
        ['command/#/more', 1], // [MQTT-4.7.1-1]
        ['command/re+boot', 1], // [MQTT-4.7.1-2]
        ['command/\u0000', 1], // [MQTT-4.7.3-2]
      ]),
    ).toEqual([1, 0, 0x87, 0x8f, 0x8f, 0x8f])
    expect(h.subscribed).toEqual(['command/#', 'command/+'])
    expect(h.refused.filter((r) => r === 'subscribe-refused')).toHaveLength(3)
    expect(h.conn.closed || h.client.destroyed).toBe(false)
  })

  it('[MQTT-3.8.4-3] replaces a filter held already with the new grant', async () => {
    const h = await connected()
    expect(await suback(h, [['command/#', 1]])).toEqual([1])
    expect(await suback(h, [['command/#', 0]], 2)).toEqual([0])
    expect([...h.conn.link!.subscriptions()]).toEqual([['command/#', 0]])
  })

  it(`holds at most ${MAX_FILTERS} filters: one more gets 0x97 quota exceeded`, async () => {
    const h = await connected()
    const filters = Array.from({ length: MAX_FILTERS + 1 }, (_, i): [string, 1] => [`command/c${i}`, 1])
    const codes = await suback(h, filters)
    expect(codes.slice(0, MAX_FILTERS)).toEqual(Array(MAX_FILTERS).fill(1))
    expect(codes[MAX_FILTERS]).toBe(0x97)
  })

  it('[MQTT-3.10.4-1] [MQTT-3.10.4-5] [MQTT-3.11.3-1] answers UNSUBSCRIBE with 0x00 for a filter held and 0x11 for one not', async () => {
    const h = await connected()
    await suback(h, [['command/#', 1]])
    const unsuback = h.next('unsuback')
    h.send({ cmd: 'unsubscribe', messageId: 9, unsubscriptions: ['command/+', 'command/#'] })
    expect(await unsuback).toMatchObject({ messageId: 9, granted: [0x11, 0x00] })
    expect(h.unsubscribed()).toBe(1)
    expect([...h.conn.link!.subscriptions()]).toEqual([])
  })

  it('ends a Shared Subscription with DISCONNECT 0x9E and a Subscription Identifier with 0xA1 (§3.2.2.3.17, §3.2.2.3.18)', async () => {
    const shared = await connected()
    shared.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$share/g/command/#', qos: 1 }] })
    expect(await disconnectCode(shared)).toBe(0x9e)
    const identified = await connected()
    identified.send({
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: [{ topic: 'command/#', qos: 1 }],
      properties: { subscriptionIdentifier: 7 },
    })
    expect(await disconnectCode(identified)).toBe(0xa1)
  })
})

describe('MQTT 5 endpoint: PUBLISHes to the device (its DeviceLink)', () => {
  it("[MQTT-3.3.4-9] keeps to the client's Receive Maximum: the next QoS 1 PUBLISH waits for a PUBACK", async () => {
    const h = await connected({}, { properties: { receiveMaximum: 1 } })
    const link = h.conn.link!
    const first = h.next('publish')
    expect(await link.publish({ topic: 'command/a', payload: Buffer.from('1'), qos: 1 })).toBe('written')
    const firstId = ((await first) as { messageId?: number }).messageId!
    let secondDone = false
    const second = link.publish({ topic: 'command/b', payload: Buffer.from('2'), qos: 1 }).then((r) => {
      secondDone = true
      return r
    })
    // A QoS 0 PUBLISH and a PINGRESP are not held back [MQTT-3.3.4-10].
    expect(await link.publish({ topic: 'command/c', payload: Buffer.from('3'), qos: 0 })).toBe('written')
    const pong = h.next('pingresp')
    h.send({ cmd: 'pingreq' })
    await pong
    expect(secondDone).toBe(false)
    expect(h.received.filter((p) => p.cmd === 'publish').map((p) => (p as { topic: string }).topic)).toEqual([
      'command/a',
      'command/c',
    ])
    h.send({ cmd: 'puback', messageId: firstId, reasonCode: 0 })
    expect(await second).toBe('written')
    const sent = h.received.filter((p) => p.cmd === 'publish') as Array<{ topic: string; messageId?: number }>
    expect(sent.map((p) => p.topic)).toEqual(['command/a', 'command/c', 'command/b'])
  })

  it(`lets at most ${MAX_WAITING} PUBLISHes wait for a PUBACK; one more is not written`, async () => {
    const h = await connected({}, { properties: { receiveMaximum: 1 } })
    const link = h.conn.link!
    const out = (n: number) => ({ topic: `command/${n}`, payload: Buffer.from('x'), qos: 1 as const })
    expect(await link.publish(out(0))).toBe('written')
    const waiting = Array.from({ length: MAX_WAITING }, (_, i) => link.publish(out(i + 1)))
    expect(await link.publish(out(MAX_WAITING + 1))).toBe('not-written')
    h.client.destroy()
    expect(await Promise.all(waiting)).toEqual(Array(MAX_WAITING).fill('not-written'))
  })

  it("[MQTT-3.1.2-24] never sends a PUBLISH over the client's Maximum Packet Size: too-large", async () => {
    const h = await connected({}, { properties: { maximumPacketSize: 100 } })
    const link = h.conn.link!
    const arrived = h.next('publish')
    expect(await link.publish({ topic: 'command/a', payload: Buffer.alloc(200), qos: 1 })).toBe('too-large')
    expect(await link.publish({ topic: 'command/b', payload: Buffer.alloc(10), qos: 1 })).toBe('written')
    await arrived
    expect(h.received.filter((p) => p.cmd === 'publish').map((p) => (p as { topic: string }).topic)).toEqual([
      'command/b',
    ])
  })

  it('carries the MQTT 5 properties it is given and leaves unset ones out', async () => {
    const h = await connected()
    const arrived = h.next('publish')
    await h.conn.link!.publish({
      topic: 'command/get/req/r1',
      payload: Buffer.from('{}'),
      qos: 0,
      properties: {
        messageExpiryInterval: 30,
        responseTopic: 'command/res/r1/200',
        correlationData: Buffer.from('r1'),
        contentType: undefined,
      },
    })
    const packet = (await arrived) as { properties?: Record<string, unknown> }
    expect(packet.properties).toEqual({
      messageExpiryInterval: 30,
      responseTopic: 'command/res/r1/200',
      correlationData: Buffer.from('r1'),
    })
  })

  it('ends a PUBACK for a Packet Identifier it never sent with DISCONNECT 0x82', async () => {
    const h = await connected()
    h.send({ cmd: 'puback', messageId: 42, reasonCode: 0 })
    expect(await disconnectCode(h)).toBe(0x82)
  })

  it('says not-written once the connection has ended', async () => {
    const h = await connected()
    h.client.destroy()
    await h.closed
    expect(await h.conn.link!.publish({ topic: 'command/a', payload: Buffer.from('x'), qos: 1 })).toBe(
      'not-written',
    )
  })
})

/** The Topic Name and Topic Alias of each PUBLISH the server wrote, as on the wire, once there are `count`. */
async function sentTopics(h: Harness, count: number): Promise<Array<[string, number | undefined]>> {
  const sent = () => h.received.filter((p): p is IPublishPacket => p.cmd === 'publish')
  while (sent().length < count) await new Promise((resolve) => setImmediate(resolve))
  return sent().map((p) => [p.topic, p.properties?.topicAlias])
}

/** Writes a QoS 0 PUBLISH on each topic in turn through the connection's link. */
async function sendAll(h: Harness, topics: string[]): Promise<void> {
  for (const topic of topics) {
    expect(await h.conn.link!.publish({ topic, payload: Buffer.from('x'), qos: 0 })).toBe('written')
  }
}

describe('MQTT 5 endpoint: Topic Aliases to the device (§3.3.2.3.4)', () => {
  it('[MQTT-3.3.2-10] [MQTT-3.1.2-27] sends no Topic Alias when the CONNECT had no Topic Alias Maximum, or 0', async () => {
    for (const properties of [{}, { topicAliasMaximum: 0 }]) {
      const h = await connected({}, { properties })
      await sendAll(h, ['config', 'config', 'config'])
      expect(await sentTopics(h, 3)).toEqual([
        ['config', undefined],
        ['config', undefined],
        ['config', undefined],
      ])
    }
  })

  it('gives a topic sent again an alias with its name, then sends the alias with an empty Topic Name', async () => {
    const h = await connected({}, { properties: { topicAliasMaximum: 4 } })
    await h.conn.link!.publish({
      topic: 'command/reboot',
      payload: Buffer.from('1'),
      qos: 0,
      properties: { contentType: 'text/plain' },
    })
    await sendAll(h, ['command/reboot', 'command/get/req/r1', 'command/reboot', 'command/reboot'])
    expect(await sentTopics(h, 5)).toEqual([
      ['command/reboot', undefined],
      ['command/reboot', 1],
      ['command/get/req/r1', undefined], // sent once: no alias
      ['', 1],
      ['', 1],
    ])
    expect((h.received[1] as IPublishPacket).properties?.contentType).toBe('text/plain')
    // Aliases are per connection: a new one starts with none.
    const again = await connected({}, { properties: { topicAliasMaximum: 4 } })
    await sendAll(again, ['command/reboot', 'command/reboot'])
    expect(await sentTopics(again, 2)).toEqual([
      ['command/reboot', undefined],
      ['command/reboot', 1],
    ])
  })

  it("[MQTT-3.3.2-9] never sends an alias above the client's Topic Alias Maximum: once all are taken, topics go with their name", async () => {
    const h = await connected({}, { properties: { topicAliasMaximum: 2 } })
    await sendAll(h, ['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'c'])
    expect(await sentTopics(h, 9)).toEqual([
      ['a', undefined],
      ['b', undefined],
      ['c', undefined],
      ['a', 1],
      ['b', 2],
      ['c', undefined],
      ['', 1],
      ['', 2],
      ['c', undefined],
    ])
  })

  it(`sets at most ${SERVER_TOPIC_ALIASES} aliases, whatever higher maximum the client allows`, async () => {
    const h = await connected({}, { properties: { topicAliasMaximum: 0xffff } })
    const topics = Array.from({ length: SERVER_TOPIC_ALIASES + 4 }, (_, i) => `command/c${i}`)
    await sendAll(h, [...topics, ...topics])
    const aliases = (await sentTopics(h, topics.length * 2)).map(([, alias]) => alias)
    expect(aliases.slice(0, topics.length)).toEqual(Array(topics.length).fill(undefined))
    expect(aliases.slice(topics.length)).toEqual([
      ...Array.from({ length: SERVER_TOPIC_ALIASES }, (_, i) => i + 1),
      ...Array(4).fill(undefined),
    ])
  })

  it('sets no alias with a PUBLISH that was not written (too-large): the next one on the topic sets it', async () => {
    const h = await connected({}, { properties: { topicAliasMaximum: 4, maximumPacketSize: 100 } })
    const link = h.conn.link!
    await sendAll(h, ['command/a'])
    expect(await link.publish({ topic: 'command/a', payload: Buffer.alloc(200), qos: 0 })).toBe('too-large')
    await sendAll(h, ['command/a', 'command/a'])
    expect(await sentTopics(h, 3)).toEqual([
      ['command/a', undefined],
      ['command/a', 1],
      ['', 1],
    ])
  })
})

/** Codes a DISCONNECT may carry when the client broke a rule (§4.13). */
const VIOLATION_CODES = new Set([0x81, 0x82, 0x93, 0x94, 0x95, 0x9a, 0x9b, 0x9e, 0xa1])

/**
 * Feeds `bytes` after a good CONNECT, then a PINGREQ, then ends the client's side: resolves once the
 * server closed, with the reason code of the DISCONNECT it sent (undefined: none).
 */
async function fuzz(bytes: Buffer): Promise<number | undefined> {
  const h = await connected()
  h.client.write(bytes)
  h.client.end(generate({ cmd: 'pingreq' }, { protocolVersion: 5 }))
  await h.closed
  // The pair hands written bytes to the client side on process.nextTick, which can come after the
  // server's 'close': every nextTick has run before a setImmediate callback does.
  await new Promise((resolve) => setImmediate(resolve))
  const disconnect = h.received.find((p) => p.cmd === 'disconnect') as { reasonCode?: number } | undefined
  return disconnect === undefined ? undefined : (disconnect.reasonCode ?? 0)
}

/** Whether the decoder alone calls `bytes` malformed before it reads any whole packet. */
function malformedAtOnce(bytes: Buffer): boolean {
  const check = createParser({ protocolVersion: 5 })
  let packets = 0
  let error = false
  check.on('packet', () => packets++)
  check.on('error', () => (error = packets === 0))
  check.parse(bytes)
  return error
}

describe('MQTT 5 endpoint: fuzzed input', () => {
  it('never crashes on random bytes and ends any violation with its reason code', async () => {
    for (let i = 0; i < 200; i++) {
      const bytes = randomBytes(1 + (i % 64))
      const code = await fuzz(bytes)
      if (malformedAtOnce(bytes)) expect(code, `bytes ${bytes.toString('hex')}`).toBe(0x81)
      else if (code !== undefined) expect(VIOLATION_CODES, `bytes ${bytes.toString('hex')}`).toContain(code)
    }
  })

  it('never crashes on mutated valid packets, and a malformed one ends with DISCONNECT 0x81 [MQTT-4.13.1-1]', async () => {
    const valid = generate(
      publish('sensors/t', 7, { properties: { contentType: 'text/plain', userProperties: { a: 'b' } } }),
      { protocolVersion: 5 },
    )
    let malformed = 0
    for (let i = 0; i < 200; i++) {
      const bytes = Buffer.from(valid)
      for (let flips = 0; flips < 1 + (i % 4); flips++) {
        bytes[(i * 7 + flips * 13) % bytes.length] = randomBytes(1)[0]!
      }
      const code = await fuzz(bytes)
      if (malformedAtOnce(bytes)) {
        malformed++
        expect(code, `bytes ${bytes.toString('hex')}`).toBe(0x81)
      } else if (code !== undefined) expect(VIOLATION_CODES, `bytes ${bytes.toString('hex')}`).toContain(code)
    }
    expect(malformed).toBeGreaterThan(0)
  })
})
