// The seam between the command dispatcher and the device adapters. An adapter attaches a sink for
// every device (or gateway) that can take commands through it right now — an MQTT session, an
// HTTP long poll, a CoAP request or observation — and detaches it when that ends; TTN, which has
// no session, offers sinks for devices it knows a downlink target of. Responses of devices are
// made durable by the adapter's ingest and then reported here, so a waiting API call returns.
import type { Protocol } from '../core/events/build.ts'
import type { Command } from '../core/events/commands.ts'

/** A command as a device receives it; `device` differs from the sink's own when sent through a gateway. */
export type DeviceCommand = Pick<
  Command,
  | 'id'
  | 'tenant'
  | 'device'
  | 'name'
  | 'payload'
  | 'contentType'
  | 'requestId'
  | 'fport'
  | 'downlink'
  | 'expiresAt'
  | 'traceparent'
>

export type DeliveryResult =
  /** Handed to the device (what that means per protocol: docs/commands.md). */
  | { readonly kind: 'delivered' }
  /** The sink cannot take it now (closed, or a one-shot sink already used): it stays queued. */
  | { readonly kind: 'gone' }
  /** The device can never take it (too large for it, refused by TTN ...): it ends with status failed. */
  | { readonly kind: 'failed'; readonly reason: string }

export interface CommandSink {
  readonly protocol: Protocol
  /** One command at a time: the dispatcher awaits each before it hands over the next. */
  deliver(command: DeviceCommand): Promise<DeliveryResult>
}

/** A device's answer, already durable on the ingress topic. */
export interface DeviceResponse {
  readonly tenant: string
  /** The device the command was for (a gateway answers for it). */
  readonly device: string
  readonly requestId: string
  readonly status: number
  readonly payload: Buffer
  readonly contentType?: string | undefined
}

export interface CommandOutlet {
  /**
   * `device` of `tenant` can take commands through `sink` until the returned function is called;
   * its waiting commands (and those of devices it is a gateway for) are delivered at once.
   */
  attach(tenant: string, device: string, sink: CommandSink): () => void
  /** Sinks for devices without a session (TTN downlinks); asked when a device has no attached sink. */
  offline(provider: (tenant: string, device: string) => Promise<CommandSink | undefined>): () => void
  /** The device may take commands now through an offline sink (a TTN uplink came): delivers what waits. */
  pending(tenant: string, device: string): void
  /** Tells a waiting request (the API's `wait`) about a response; never throws. */
  responded(response: DeviceResponse): void
}
