// Prometheus metrics of device files (core/metrics.ts conventions), per tenant and per device:
// tokens issued, uploads and their bytes, and refusals by reason. Per-device
// series are bounded: the first `maxDevices` devices a process counts get their own `device` label,
// every later one is counted as `device="(other)"` (the per-tenant series stay exact).
import type { Registry } from '../metrics.ts'
import { Counter } from '../metrics.ts'

/**
 * Why a token, a URL or an upload was refused (the `reason` label); `failed` is anything else (the
 * device is unknown, the client went away, a dependency failed).
 */
export type UploadRefusal = 'invalid' | 'too-large' | 'quota' | 'rate' | 'token' | 'integrity' | 'failed'

export interface UploadMetrics {
  issued(tenant: string, device: string): void
  uploaded(tenant: string, device: string, bytes: number): void
  /** A refusal; a token that matches no upload has no tenant (counted as `tenant="(unknown)"`). */
  refused(tenant: string | undefined, device: string | undefined, reason: UploadRefusal): void
}

/** The label of devices past the bound, and of refusals nobody can be named for. */
export const OTHER_DEVICE = '(other)'
export const UNKNOWN_TENANT = '(unknown)'

export function createUploadMetrics(
  registry: Registry,
  options: { readonly maxDevices: number },
): UploadMetrics {
  const registers = [registry]
  const counter = (name: string, help: string, labelNames: string[]) =>
    new Counter({ name, help, labelNames, registers })
  const tokens = counter('tributary_file_tokens_total', 'Upload tokens and presigned URLs issued.', [
    'tenant',
  ])
  const uploads = counter('tributary_file_uploads_total', 'Device files uploaded.', ['tenant'])
  const bytes = counter('tributary_file_upload_bytes_total', 'Bytes of device files uploaded.', ['tenant'])
  const refusals = counter(
    'tributary_file_refusals_total',
    'Upload token requests and uploads refused, by reason.',
    ['tenant', 'reason'],
  )
  const deviceUploads = counter('tributary_file_device_uploads_total', 'Device files uploaded, per device.', [
    'tenant',
    'device',
  ])
  const deviceBytes = counter(
    'tributary_file_device_upload_bytes_total',
    'Bytes of device files uploaded, per device.',
    ['tenant', 'device'],
  )
  const deviceRefusals = counter(
    'tributary_file_device_refusals_total',
    'Upload token requests and uploads refused, per device and reason.',
    ['tenant', 'device', 'reason'],
  )
  // Devices with their own series, per process; never forgotten, so a device keeps its series.
  const labelled = new Set<string>()
  const deviceLabel = (tenant: string, device: string): string => {
    const key = `${tenant}/${device}`
    if (labelled.has(key)) return device
    if (labelled.size >= options.maxDevices) return OTHER_DEVICE
    labelled.add(key)
    return device
  }
  return {
    issued(tenant) {
      tokens.inc({ tenant })
    },
    uploaded(tenant, device, size) {
      const labels = { tenant, device: deviceLabel(tenant, device) }
      uploads.inc({ tenant })
      bytes.inc({ tenant }, size)
      deviceUploads.inc(labels)
      deviceBytes.inc(labels, size)
    },
    refused(tenant, device, reason) {
      refusals.inc({ tenant: tenant ?? UNKNOWN_TENANT, reason })
      if (tenant !== undefined && device !== undefined) {
        deviceRefusals.inc({ tenant, device: deviceLabel(tenant, device), reason })
      }
    },
  }
}
