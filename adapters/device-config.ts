// Device configuration as every request/response adapter serves it (docs/config.md): what happens
// once a device was sent its effective configuration (the `config.delivered` event made durable,
// then the delivery recorded) and when it reports `{configId, statusCode?, reasonPhrase?}` (the
// report checked and recorded, then `config.applied`). HTTP, CoAP and MQTT call these; each says the
// outcome in its own protocol.
import type { Ingest, Outcome } from './adapter.ts'
import { isTributaryError } from '../core/errors.ts'
import type { Protocol } from '../core/events/build.ts'
import { appliedEventInput, deliveredEventInput } from '../core/events/config.ts'
import type { RegistryService } from '../core/registry/service.ts'

export interface DeviceConfigDeps {
  readonly ingest: Pick<Ingest, 'event'>
  readonly config: Pick<RegistryService, 'configDelivered' | 'configApplied'>
}

/** Who asked, for which device, over what. */
export interface ConfigCaller {
  readonly tenant: string
  /** The device the configuration is for (a gateway's `?as=` device). */
  readonly device: string
  /** The authenticated device: the gateway when it differs from `device`. */
  readonly sender: string
  readonly protocol: Protocol
  readonly credential?: string | undefined
  readonly time?: Date | undefined
}

/**
 * The device is being sent configuration `configId`: its `config.delivered` event is made durable,
 * then the delivery is recorded. Anything but `accepted` means nothing may be sent.
 *
 * An adapter that pushes (MQTT) passes `write`, which sends the configuration between the event and
 * the record: only a configuration written to the device is recorded as delivered. When it says it
 * could not write, the outcome is `unavailable` and nothing is recorded.
 */
export async function deliverConfig(
  deps: {
    readonly ingest: DeviceConfigDeps['ingest']
    readonly config: Pick<RegistryService, 'configDelivered'>
  },
  who: ConfigCaller,
  configId: string,
  write?: () => Promise<boolean>,
): Promise<Outcome> {
  const { tenant, device, sender, protocol, time } = who
  const outcome = await deps.ingest.event(
    deliveredEventInput({
      tenant,
      device,
      sender: sender === device ? undefined : sender,
      protocol,
      configId,
      time,
    }),
  )
  if (outcome.kind !== 'accepted') return outcome
  if (write !== undefined && !(await write())) {
    return { kind: 'unavailable', detail: 'the configuration could not be written to the device' }
  }
  await deps.config.configDelivered(tenant, device, configId, protocol)
  return outcome
}

/**
 * The application version the device says it runs (`appVersion` with its configuration request):
 * recorded when it differs from the registry's, which moves the device to that version's
 * configuration before it is answered; `rejected`/`invalid` for a malformed one, and nothing written.
 */
export async function reportAppVersion(
  config: Pick<RegistryService, 'reportAppVersion'>,
  who: Pick<ConfigCaller, 'tenant' | 'device'>,
  appVersion: unknown,
): Promise<Extract<Outcome, { kind: 'rejected' }> | undefined> {
  try {
    await config.reportAppVersion(who.tenant, who.device, appVersion)
    return undefined
  } catch (err) {
    if (isTributaryError(err, 'REGISTRY_INVALID'))
      return { kind: 'rejected', reason: 'invalid', detail: err.message }
    throw err
  }
}

/**
 * The device's report (the parsed JSON body): checked and recorded (`rejected`/`invalid` when it is
 * malformed or names an id never sent to the device, and then nothing is written), then published
 * as `config.applied`.
 */
export async function reportConfigApplied(
  deps: DeviceConfigDeps,
  who: ConfigCaller,
  body: unknown,
): Promise<Outcome> {
  const { tenant, device, sender, protocol, credential, time } = who
  let report
  try {
    report = await deps.config.configApplied(tenant, device, body, protocol)
  } catch (err) {
    if (isTributaryError(err, 'REGISTRY_INVALID'))
      return { kind: 'rejected', reason: 'invalid', detail: err.message }
    throw err
  }
  return deps.ingest.event(
    appliedEventInput({
      tenant,
      device,
      sender: sender === device ? undefined : sender,
      protocol,
      credential,
      time,
      ...report,
    }),
  )
}
