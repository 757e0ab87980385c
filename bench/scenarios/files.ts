// Device file uploads through Tributary's file endpoint (token, then `PUT /v1/files/<id>` streamed
// into S3) on an S3 store served by S3Proxy, against the baseline of the same bytes PUT straight to
// the same bucket with a presigned URL, by the same client code: interleaved rounds, throughput
// ratio. Then the process's RSS while `concurrent` devices upload at once, for a large and a ten
// times smaller file: streaming keeps it bounded, so the two peaks stay close instead of growing
// with the file size.
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import { randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startS3Proxy } from '../../scripts/s3proxy.ts'
import type { Contender, Scenario, ScenarioContext, ScenarioResult } from '../harness.ts'
import {
  BenchError,
  MiB,
  compareMetrics,
  formatNumber,
  formatRatio,
  median,
  reportRuns,
  requireKafka,
  scenarioParams,
  sideBySide,
} from '../harness.ts'
import { processStats } from '../server-process.ts'
import type { DeviceIdentity, TributaryProcess } from '../tributary-process.ts'
import { registerDevices, startTributary } from '../tributary-process.ts'

interface Params {
  readonly rounds: number
  /** Bytes of the file of the throughput comparison. */
  readonly bytes: number
  /** Devices uploading at once in the memory runs, and the larger file size each sends. */
  readonly concurrent: number
  readonly concurrentBytes: number
}

const SIZES = {
  full: { rounds: 3, bytes: 100 * MiB, concurrent: 20, concurrentBytes: 50 * MiB },
  quick: { rounds: 1, bytes: 8 * MiB, concurrent: 4, concurrentBytes: 4 * MiB },
}
const CHUNK = randomBytes(MiB)
const RSS_SAMPLE_MS = 50

/** PUTs `bytes` of data to `url` with a Content-Length, 1 MiB writes as the socket drains. */
function put(url: string, bytes: number, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'PUT',
      headers: { ...headers, 'content-length': String(bytes) },
    })
    req.on('error', reject)
    req.on('response', (res) => {
      res.resume()
      res.on('end', () =>
        res.statusCode !== undefined && res.statusCode < 300
          ? resolve(res.statusCode)
          : reject(new BenchError(`PUT ${new URL(url).pathname} answered ${res.statusCode}`)),
      )
    })
    let left = bytes
    const write = (): void => {
      while (left > 0) {
        const chunk = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left)
        left -= chunk.length
        if (!req.write(chunk)) {
          req.once('drain', write)
          return
        }
      }
      req.end()
    }
    write()
  })
}

interface UploadSample {
  readonly ms: number
  readonly mibPerSec: number
  /** CPU time of the tributary process during the upload (candidate runs only). */
  readonly tributaryCpuMs?: number | undefined
}

async function timedPut(url: string, bytes: number, headers: Record<string, string>): Promise<UploadSample> {
  const begin = performance.now()
  await put(url, bytes, headers)
  const ms = performance.now() - begin
  return { ms, mibPerSec: bytes / MiB / (ms / 1000) }
}

/** Asks for an upload token as the device does; returns the upload URL and the token. */
async function token(
  tributary: TributaryProcess,
  device: DeviceIdentity,
  name: string,
  size: number,
): Promise<{ uploadUrl: string; token: string }> {
  const response = await fetch(`http://127.0.0.1:${tributary.port}/v1/files/token`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${device.password}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ name, size }),
  })
  if (response.status !== 201) {
    throw new BenchError(`POST /v1/files/token answered ${response.status}: ${await response.text()}`)
  }
  return (await response.json()) as { uploadUrl: string; token: string }
}

interface MemoryRun {
  readonly bytesPerDevice: number
  readonly devices: number
  readonly idleRssMiB: number
  readonly peakRssMiB: number
  readonly seconds: number
}

/** `devices` upload `bytes` each at once; the process's RSS is read every RSS_SAMPLE_MS. */
async function memoryRun(
  tributary: TributaryProcess,
  devices: readonly DeviceIdentity[],
  bytes: number,
): Promise<MemoryRun> {
  const issued = await Promise.all(devices.map((d, i) => token(tributary, d, `mem-${i}.bin`, bytes)))
  const idle = (await processStats(tributary.pid)).rssBytes
  let peak = idle
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, (await processStats(tributary.pid)).rssBytes)
      await new Promise((resolve) => setTimeout(resolve, RSS_SAMPLE_MS))
    }
  })()
  const begin = performance.now()
  try {
    await Promise.all(issued.map((t) => put(t.uploadUrl, bytes, { 'x-auth-token': t.token })))
  } finally {
    sampling = false
    await sampler
  }
  return {
    bytesPerDevice: bytes,
    devices: devices.length,
    idleRssMiB: idle / MiB,
    peakRssMiB: peak / MiB,
    seconds: (performance.now() - begin) / 1000,
  }
}

export const files: Scenario = {
  name: 'files',
  description:
    'file upload through tributary (token + streamed PUT into S3Proxy) vs a presigned PUT straight to S3Proxy; RSS under concurrent uploads',
  needsKafka: true,
  async run(context: ScenarioContext): Promise<ScenarioResult> {
    const brokers = requireKafka(context)
    const params: Params = scenarioParams(context, SIZES, 'bytes')
    context.progress('starting S3Proxy')
    const s3 = await startS3Proxy()
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-bench-files-'))
    let tributary: TributaryProcess | undefined
    try {
      const bucket = 'bench-files'
      const client = new S3Client({
        endpoint: s3.endpoint,
        region: s3.region,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
        forcePathStyle: true,
      })
      await client.send(new CreateBucketCommand({ Bucket: bucket }))
      tributary = await startTributary({
        brokers,
        dataDir,
        topicPrefix: `bench_files_${Date.now()}`,
        listener: 'http',
        env: {
          TRIBUTARY_MQTT_ENABLED: 'false',
          TRIBUTARY_COAP_ENABLED: 'false',
          TRIBUTARY_S3_BUCKET: bucket,
          TRIBUTARY_S3_ENDPOINT: s3.endpoint,
          TRIBUTARY_S3_REGION: s3.region,
          TRIBUTARY_S3_ACCESS_KEY_ID: s3.accessKeyId,
          TRIBUTARY_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
          TRIBUTARY_S3_FORCE_PATH_STYLE: 'true',
          TRIBUTARY_FILES_MAX_BYTES: String(Math.max(params.bytes, params.concurrentBytes)),
        },
      })
      const server = tributary
      const devices = await registerDevices(server.api, 'bench', {
        count: params.concurrent,
        prefix: 'uploader-',
        secret: 'token',
        concurrency: 4,
      })

      // (a) One file, through Tributary and straight to the store, interleaved.
      let n = 0
      const candidate: Contender<UploadSample> = {
        label: 'tributary',
        async run() {
          const issued = await token(server, devices[0]!, `through-${n++}.bin`, params.bytes)
          const before = (await processStats(server.pid)).cpuMs
          const sample = await timedPut(issued.uploadUrl, params.bytes, { 'x-auth-token': issued.token })
          return { ...sample, tributaryCpuMs: (await processStats(server.pid)).cpuMs - before }
        },
      }
      const baseline: Contender<UploadSample> = {
        label: 'direct S3 PUT',
        async run() {
          const url = await getSignedUrl(
            client,
            new PutObjectCommand({ Bucket: bucket, Key: `direct/${n++}`, ContentLength: params.bytes }),
            { expiresIn: 600, signableHeaders: new Set(['content-length']) },
          )
          return timedPut(url, params.bytes, {})
        },
      }
      const result = await sideBySide({
        candidate,
        baseline,
        rounds: params.rounds,
        onRun: reportRuns(context, params.rounds, (s) => `${formatNumber(s.mibPerSec)} MiB/s`),
      })
      const { ratios, rows } = compareMetrics(result, {
        throughput: { label: `MiB/s (${params.bytes / MiB} MiB)`, of: (s) => s.mibPerSec },
        ms: { label: 'upload ms', of: (s) => s.ms },
      })

      // (b) RSS while the devices upload at once: the large size, then a tenth of it.
      context.progress(`memory: ${params.concurrent} devices × ${params.concurrentBytes / MiB} MiB`)
      const large = await memoryRun(server, devices, params.concurrentBytes)
      const smallBytes = Math.max(1, Math.floor(params.concurrentBytes / 10))
      context.progress(`memory: ${params.concurrent} devices × ${formatNumber(smallBytes / MiB)} MiB`)
      const small = await memoryRun(server, devices, smallBytes)
      const memoryRow = (run: MemoryRun): string[] => [
        `peak RSS MiB, ${run.devices} × ${formatNumber(run.bytesPerDevice / MiB)} MiB`,
        formatNumber(run.peakRssMiB),
        formatNumber(run.idleRssMiB),
        formatRatio(run.peakRssMiB / run.idleRssMiB),
        `${formatNumber(run.seconds)} s`,
      ]
      return {
        table: {
          title: 'files: uploads through tributary vs straight to S3Proxy, and RSS under concurrent uploads',
          columns: ['metric', 'tributary', 'direct S3 PUT / idle', 'ratio', 'per round / time'],
          rows: [...rows, memoryRow(large), memoryRow(small)],
          notes: [
            `${params.rounds} interleaved rounds after a warmup; goal: throughput ratio ≥ 0.8`,
            `tributary CPU per upload (median): ${formatNumber(median(result.candidate.samples.map((s) => s.tributaryCpuMs ?? 0)))} ms for ${params.bytes / MiB} MiB`,
            'memory rows: peak RSS of the tributary process while the devices upload, its RSS before, their ratio',
            `peak RSS at ${formatNumber(params.concurrentBytes / MiB)} MiB ÷ at ${formatNumber(smallBytes / MiB)} MiB per device: ${formatRatio(large.peakRssMiB / small.peakRssMiB)} (file size ratio 10)`,
          ],
        },
        data: { params, ratios, samples: result, memory: { large, small } },
      }
    } finally {
      await tributary?.stop()
      await s3.stop()
      rmSync(dataDir, { recursive: true, force: true })
    }
  },
}
