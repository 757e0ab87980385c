// A subscription's filter applied to one event: every given field must match; within a list, any.
import type { CloudEvent } from '../../core/events/cloudevent.ts'
import type { SubscriptionFilter } from '../../core/registry/model.ts'
import { matchesChannel } from '../../core/events/channel-filter.ts'

export type LabelLookup = (
  tenant: string,
  device: string,
) => Promise<Readonly<Record<string, string>> | undefined>

export async function matchesFilter(
  filter: SubscriptionFilter,
  event: CloudEvent,
  labelsOf: LabelLookup,
): Promise<boolean> {
  const { type, subject, device, tenant } = event.attributes
  if (filter.types !== undefined && !filter.types.includes(type)) return false
  if (filter.channels !== undefined) {
    if (subject === undefined || !filter.channels.some((f) => matchesChannel(f, subject))) return false
  }
  if (filter.devices !== undefined && (device === undefined || !filter.devices.includes(device))) return false
  const wanted = filter.labels === undefined ? [] : Object.entries(filter.labels)
  if (wanted.length === 0) return true
  if (device === undefined || tenant === undefined) return false
  const labels = await labelsOf(tenant, device)
  return labels !== undefined && wanted.every(([name, value]) => labels[name] === value)
}
