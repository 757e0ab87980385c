// A local S3-compatible server for tests: S3Proxy (org.gaul:s3proxy, jar-with-dependencies) from
// Maven Central on its filesystem backend. It verifies SigV4, presigned URLs and checksums.
//   node scripts/s3proxy.ts resolve       fetch the jar into .cache/s3proxy (once)
//   node scripts/s3proxy.ts start         run one on a free loopback port until Ctrl-C
// Tests call startS3Proxy() from test/setup/services.ts.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT, indent, javaBin, run, tail } from './kafka/exec.ts'
import { checkJava } from './kafka/resolve.ts'

// 2.x answers 501 NotImplemented to x-amz-checksum-sha256; 4.x verifies it (and runs on Java 17).
export const S3PROXY_VERSION = '4.1.0'
const CACHE_DIR = join(ROOT, '.cache', 's3proxy')
const ARTIFACT = `org.gaul:s3proxy:${S3PROXY_VERSION}:jar:jar-with-dependencies`
export const S3PROXY_JAR = join(CACHE_DIR, `s3proxy-${S3PROXY_VERSION}-jar-with-dependencies.jar`)
const READY_TIMEOUT_MS = 60_000

export class S3ProxySetupError extends Error {
  override name = 'S3ProxySetupError'
}

export interface LocalS3 {
  /** http://127.0.0.1:<port> */
  readonly endpoint: string
  readonly region: string
  readonly accessKeyId: string
  readonly secretAccessKey: string
  stop(): Promise<void>
}

/** Makes sure the jar is in .cache/s3proxy; runs mvn only when it is missing. */
export async function resolveS3Proxy(): Promise<{ jar: string; resolved: boolean }> {
  try {
    await access(S3PROXY_JAR)
    return { jar: S3PROXY_JAR, resolved: false }
  } catch {
    // not cached yet
  }
  await mkdir(CACHE_DIR, { recursive: true })
  const args = ['-B', '-q', '-Dstyle.color=never', 'dependency:copy', `-Dartifact=${ARTIFACT}`]
  args.push(`-DoutputDirectory=${CACHE_DIR}`)
  const { code, output } = await run(
    'mvn',
    args,
    'Maven (mvn) not found: apt-get install -y maven (it fetches S3Proxy from Maven Central).',
  )
  if (code !== 0) {
    throw new S3ProxySetupError(`mvn ${args.join(' ')} failed (exit ${code}):\n${indent(tail(output))}`)
  }
  await access(S3PROXY_JAR)
  return { jar: S3PROXY_JAR, resolved: true }
}

// Jetty logs the bound address: "Started ogsoejs.ServerConnector@19ae6bb{HTTP/1.1, (http/1.1)}{127.0.0.1:37859}".
const STARTED = /Started \S*ServerConnector@\S+\{[^}]*\}\{127\.0\.0\.1:(\d+)\}/

/** Starts S3Proxy on a free loopback port with a private data folder; resolves once it listens. */
export async function startS3Proxy(): Promise<LocalS3> {
  const { jar } = await resolveS3Proxy()
  await checkJava()
  const dir = await mkdtemp(join(tmpdir(), 'tributary-s3proxy-'))
  const dataDir = join(dir, 'data')
  await mkdir(dataDir)
  const accessKeyId = `test-${randomBytes(6).toString('hex')}`
  const secretAccessKey = randomBytes(24).toString('base64url')
  const properties = [
    's3proxy.endpoint=http://127.0.0.1:0',
    's3proxy.authorization=aws-v2-or-v4',
    `s3proxy.identity=${accessKeyId}`,
    `s3proxy.credential=${secretAccessKey}`,
    'jclouds.provider=filesystem',
    `jclouds.filesystem.basedir=${dataDir}`,
  ]
  const propertiesFile = join(dir, 's3proxy.properties')
  await writeFile(propertiesFile, properties.join('\n') + '\n')
  const child = spawn(javaBin(), ['-Xmx256m', '-jar', jar, '--properties', propertiesFile], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()))
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => fail(`not listening after ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS)
    function fail(reason: string): void {
      clearTimeout(timer)
      child.kill('SIGKILL')
      reject(new S3ProxySetupError(`S3Proxy ${S3PROXY_VERSION}: ${reason}:\n${indent(tail(output))}`))
    }
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-64 * 1024)
      const match = STARTED.exec(output)
      if (match !== null) {
        clearTimeout(timer)
        resolve(Number(match[1]))
      }
    }
    child.stdout.on('data', collect)
    child.stderr.on('data', collect)
    child.once('error', (err) => fail(`could not run java: ${err.message}`))
    child.once('close', (code) => fail(`exited with code ${code}`))
  })
  // Keep draining its output so that a chatty log never blocks the JVM on a full pipe.
  child.stdout.resume()
  child.stderr.resume()
  return {
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    accessKeyId,
    secretAccessKey,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exited
      await rm(dir, { recursive: true, force: true })
    },
  }
}

async function main(command: string): Promise<number> {
  switch (command) {
    case 'resolve': {
      const { jar, resolved } = await resolveS3Proxy()
      console.error(`s3proxy ${S3PROXY_VERSION}: ${resolved ? 'resolved into' : 'cached in'} ${jar}`)
      return 0
    }
    case 'start': {
      const s3 = await startS3Proxy()
      console.error(`s3proxy ${S3PROXY_VERSION}: listening; Ctrl-C stops it and deletes its data`)
      console.log(
        `TRIBUTARY_S3_ENDPOINT=${s3.endpoint} TRIBUTARY_S3_REGION=${s3.region} ` +
          `TRIBUTARY_S3_ACCESS_KEY_ID=${s3.accessKeyId} TRIBUTARY_S3_SECRET_ACCESS_KEY=${s3.secretAccessKey} ` +
          'TRIBUTARY_S3_FORCE_PATH_STYLE=true',
      )
      const { promise, resolve } = Promise.withResolvers<void>()
      process.once('SIGINT', resolve)
      process.once('SIGTERM', resolve)
      await promise
      await s3.stop()
      return 0
    }
    default:
      console.error('usage: node scripts/s3proxy.ts resolve|start')
      return 2
  }
}

if (import.meta.main) {
  main(process.argv[2] ?? '').then(
    (code) => {
      process.exitCode = code
    },
    (err: unknown) => {
      console.error(err instanceof S3ProxySetupError ? `s3proxy: ${err.message}` : err)
      process.exitCode = 1
    },
  )
}
