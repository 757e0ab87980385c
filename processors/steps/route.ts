// Per-tenant routing: the tenant's rules, in order, each applying its actions to the event as the
// earlier rules left it (drop, reject, set or remove an extension, change type or subject, copy to
// another topic of the tenant). The event goes on to its tenant topic unless a rule ends it.
import type { CloudEvent, CloudEventAttributes } from '../../core/events/cloudevent.ts'
import { isChannel } from '../../core/events/ids.ts'
import type { Device, RouteAction, RouteMatch, RouteTable } from '../../core/registry/model.ts'
import { EXTENSION_NAME_PATTERN, PROTECTED_ATTRIBUTES } from '../../core/registry/validate-routes.ts'
import type { Step } from '../step.ts'
import { drop, next, proceed, reject } from '../step.ts'
import { matchesChannel } from '../../core/events/channel-filter.ts'

export interface RouteDeps {
  /** The tenant's table; a tenant without one has no rules. */
  routeTable(tenant: string): Promise<RouteTable | undefined>
  findDevice(tenant: string, device: string): Promise<Device | undefined>
}

/**
 * Dead-letter reasons of this step besides the rules' own `reject` reasons: a stored rule this
 * step cannot apply (the registry refuses such rules on write; this guards older rows).
 */
export const routeReasons = ['route-unusable'] as const

// The registry refuses these on write; checking again here guards rows stored before it did.
const PROTECTED: ReadonlySet<string> = new Set(PROTECTED_ATTRIBUTES)
const isExtension = (name: string): boolean => EXTENSION_NAME_PATTERN.test(name) && !PROTECTED.has(name)

function withAttributes(event: CloudEvent, attributes: Record<string, string | undefined>): CloudEvent {
  return { attributes: attributes as CloudEventAttributes, data: event.data }
}

/** The event after one action, or a string saying why the action cannot be applied. */
function apply(event: CloudEvent, action: RouteAction): CloudEvent | string {
  switch (action.action) {
    case 'set-extension':
      if (!isExtension(action.name)) return `extension ${JSON.stringify(action.name)} may not be set`
      return withAttributes(event, { ...event.attributes, [action.name]: action.value })
    case 'remove-extension': {
      if (!isExtension(action.name)) return `extension ${JSON.stringify(action.name)} may not be removed`
      if (!Object.hasOwn(event.attributes, action.name)) return event
      const { [action.name]: _removed, ...rest } = event.attributes
      return withAttributes(event, rest)
    }
    case 'set-type':
      if (action.type === '') return 'type may not be empty'
      return withAttributes(event, { ...event.attributes, type: action.type })
    case 'set-subject':
      if (!isChannel(action.subject)) return `subject ${JSON.stringify(action.subject)} is not a channel`
      return withAttributes(event, { ...event.attributes, subject: action.subject })
    case 'drop':
    case 'reject':
    case 'copy':
      return event
  }
}

export function createRoute(deps: RouteDeps): Step {
  return async (original) => {
    const tenant = original.attributes.tenant
    if (tenant === undefined) return next
    const table = await deps.routeTable(tenant)
    if (table === undefined || table.rules.length === 0) return next

    // The device is looked up at most once per event, and only if a rule matches on labels.
    let device: Promise<Device | undefined> | undefined
    const deviceLabels = async (): Promise<Readonly<Record<string, string>> | undefined> => {
      const id = original.attributes.device
      if (id === undefined) return undefined
      device ??= deps.findDevice(tenant, id)
      return (await device)?.labels
    }
    const matches = async (event: CloudEvent, match: RouteMatch): Promise<boolean> => {
      if (match.channel !== undefined) {
        const channel = event.attributes.subject
        if (channel === undefined || !matchesChannel(match.channel, channel)) return false
      }
      if (match.type !== undefined && match.type !== event.attributes.type) return false
      const wanted = Object.entries(match.labels ?? {})
      if (wanted.length === 0) return true
      const labels = await deviceLabels()
      return labels !== undefined && wanted.every(([k, v]) => Object.hasOwn(labels, k) && labels[k] === v)
    }

    let event = original
    const copies: string[] = []
    for (const rule of table.rules) {
      if (!(await matches(event, rule.match))) continue
      for (const action of rule.actions) {
        if (action.action === 'drop') return drop
        if (action.action === 'reject') return reject(action.reason, JSON.stringify({ rule: rule.name }))
        if (action.action === 'copy') {
          if (!copies.includes(action.topic)) copies.push(action.topic)
          continue
        }
        const applied = apply(event, action)
        if (typeof applied === 'string') {
          return reject('route-unusable', JSON.stringify({ rule: rule.name, problem: applied }))
        }
        event = applied
      }
    }
    return event === original && copies.length === 0 ? next : proceed(event, copies)
  }
}
