// Tenant-wide quotas at the processors: the largest payload of one event, events per second and
// payload bytes per second, counted in token buckets of the cluster state so that the limits hold
// across every processor process. Over-quota events are refused (dead-lettered), not delayed.
import { RATE_MAX } from '../../core/cluster/checks.ts'
import type { RateDecision } from '../../core/cluster/cluster.ts'
import type { Tenant } from '../../core/registry/model.ts'
import type { Step } from '../step.ts'
import { next, reject } from '../step.ts'

export interface TenancyDeps {
  tenant(id: string): Promise<Tenant | undefined>
  /** ClusterState.take: a token bucket shared by every process. */
  take(key: string, ratePerSecond: number, burst: number, cost: number): Promise<RateDecision>
}

/** Dead-letter reasons this step gives. */
export const tenancyReasons = ['payload-too-large', 'quota-events', 'quota-bytes'] as const

export const eventsBucket = (tenant: string): string => `quota:events:${tenant}`
export const bytesBucket = (tenant: string): string => `quota:bytes:${tenant}`

/**
 * Takes `cost` from a bucket refilling at `limit` per second with a burst of one second's worth.
 * A cost the bucket could never pay (more than a second's worth; every cost is at least 1, so
 * this covers a limit of zero) is refused without asking the cluster. Limits above the cluster's largest rate are counted in coarser
 * units, which keeps the ratio of cost to rate and so the limit itself.
 */
async function within(deps: TenancyDeps, key: string, limit: number, cost: number): Promise<boolean> {
  if (cost > limit) return false
  const scale = limit > RATE_MAX ? RATE_MAX / limit : 1
  const rate = limit * scale
  const decision = await deps.take(key, rate, rate, Math.min(cost * scale, rate))
  return decision.allowed
}

export function createTenancy(deps: TenancyDeps): Step {
  return async (event) => {
    // authorize, which runs before, refuses events without a known tenant.
    const tenantId = event.attributes.tenant
    if (tenantId === undefined) return next
    const tenant = await deps.tenant(tenantId)
    if (tenant === undefined) return next
    const { maxPayloadBytes, maxEventsPerSecond, maxBytesPerSecond } = tenant.quotas
    const size = event.data?.length ?? 0
    if (maxPayloadBytes !== null && size > maxPayloadBytes) {
      return reject('payload-too-large', `data of ${size} bytes exceeds maxPayloadBytes ${maxPayloadBytes}`)
    }
    // An event refused for bytes has already paid its event token: refused events still count.
    if (maxEventsPerSecond !== null && !(await within(deps, eventsBucket(tenantId), maxEventsPerSecond, 1))) {
      return reject('quota-events', `over maxEventsPerSecond ${maxEventsPerSecond}`)
    }
    if (
      maxBytesPerSecond !== null &&
      !(await within(deps, bytesBucket(tenantId), maxBytesPerSecond, Math.max(1, size)))
    ) {
      return reject('quota-bytes', `data of ${size} bytes is over maxBytesPerSecond ${maxBytesPerSecond}`)
    }
    return next
  }
}
