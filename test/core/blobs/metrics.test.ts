// The file metrics' per-device label bound: the first devices counted keep their own series, later
// ones share `device="(other)"`, and the per-tenant series stay exact.
import { describe, expect, it } from 'vitest'
import { createUploadMetrics } from '../../../core/blobs/metrics.ts'
import { createMetricsRegistry } from '../../../core/metrics.ts'

describe('upload metrics', () => {
  it('bounds the per-device series and keeps the per-tenant ones exact', async () => {
    const registry = createMetricsRegistry()
    const metrics = createUploadMetrics(registry, { maxDevices: 2 })
    metrics.uploaded('acme', 'd1', 10)
    metrics.uploaded('acme', 'd2', 20)
    metrics.uploaded('acme', 'd3', 30)
    metrics.refused('acme', 'd4', 'quota')
    metrics.uploaded('acme', 'd1', 1)
    metrics.refused(undefined, undefined, 'token')
    const text = await registry.metrics()
    expect(text).toContain('tributary_file_uploads_total{tenant="acme"} 4')
    expect(text).toContain('tributary_file_upload_bytes_total{tenant="acme"} 61')
    expect(text).toContain('tributary_file_device_upload_bytes_total{tenant="acme",device="d1"} 11')
    expect(text).toContain('tributary_file_device_upload_bytes_total{tenant="acme",device="d2"} 20')
    expect(text).toContain('tributary_file_device_upload_bytes_total{tenant="acme",device="(other)"} 30')
    expect(text).toContain(
      'tributary_file_device_refusals_total{tenant="acme",device="(other)",reason="quota"} 1',
    )
    expect(text).not.toContain('device="d3"')
    expect(text).toContain('tributary_file_refusals_total{tenant="(unknown)",reason="token"} 1')
  })
})
