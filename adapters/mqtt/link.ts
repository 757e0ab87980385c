// The port the command, configuration and upload-token modules write to a device through,
// whichever endpoint serves its connection (aedes for 3.1.1: aedes-link.ts; MQTT 5: v5/endpoint.ts):
// the filters it holds, and one PUBLISH written to that connection only, with its outcome.

/** MQTT 5 properties of a PUBLISH to a device; a 3.1.1 connection has no place for them. */
export interface OutgoingProperties {
  /** Seconds the message stays meaningful (the command's remaining ttl). */
  readonly messageExpiryInterval?: number | undefined
  /** Where the device answers a request (§4.10). */
  readonly responseTopic?: string | undefined
  readonly correlationData?: Buffer | undefined
  readonly contentType?: string | undefined
  readonly userProperties?: Readonly<Record<string, string>> | undefined
}

export interface OutgoingPublish {
  readonly topic: string
  readonly payload: Buffer
  readonly qos: 0 | 1
  readonly properties?: OutgoingProperties | undefined
}

/**
 * `written`: handed to the socket; `not-written`: the connection ended or the write failed;
 * `too-large`: over the Maximum Packet Size the client announced, never sent [MQTT-3.1.2-24].
 */
export type WriteResult = 'written' | 'not-written' | 'too-large'

export interface DeviceLink {
  /** The filters the connection holds now, with their granted QoS. */
  subscriptions(): Iterable<readonly [filter: string, qos: number]>
  /** Writes one PUBLISH to this connection only; resolves once it was written, or could not be. */
  publish(packet: OutgoingPublish): Promise<WriteResult>
}

/** The QoS `topic` goes at: the highest grant among the filters `matches` accepts, at most 1. */
export function grantedQos(link: DeviceLink, matches: (filter: string) => boolean): 0 | 1 | undefined {
  let qos: 0 | 1 | undefined
  for (const [filter, granted] of link.subscriptions()) {
    if (!matches(filter)) continue
    qos = granted >= 1 ? 1 : (qos ?? 0)
  }
  return qos
}
