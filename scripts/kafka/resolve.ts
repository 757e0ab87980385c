// Resolves Apache Kafka's jars from Maven Central (pom.xml beside this file) into
// .cache/kafka/lib, once per pom change, and checks that a Java 17+ runtime is there to run them.
import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CACHE_DIR, KafkaSetupError, indent, javaBin, run, tail } from './exec.ts'

const POM = new URL('pom.xml', import.meta.url)
export const LIB_DIR = join(CACHE_DIR, 'lib')
const MARKER = join(LIB_DIR, '.resolved.json')

export interface KafkaInstall {
  /** java executable to launch the broker with */
  java: string
  /** folder holding every jar of the broker's classpath */
  libDir: string
  /** true when mvn ran this time, false when the cache was already complete */
  resolved: boolean
}

interface Marker {
  pomSha256: string
  jars: string[]
}

/** Checks java is 17 or newer (Kafka 4 brokers need 17) and returns the binary to use. */
export async function checkJava(): Promise<string> {
  const java = javaBin()
  const { code, output } = await run(
    java,
    ['-version'],
    `Java not found (tried "${java}"). Kafka 4 needs Java 17 or newer: ` +
      'apt-get install -y openjdk-17-jre-headless, or set JAVA_HOME.',
  )
  const major = /version "(?:1\.)?(\d+)/.exec(output)?.[1]
  if (code !== 0 || major === undefined) {
    throw new KafkaSetupError(`"${java} -version" failed (exit ${code}):\n${indent(tail(output))}`)
  }
  if (Number(major) < 17) {
    throw new KafkaSetupError(`Java ${major} found at "${java}"; Kafka 4 needs 17 or newer (set JAVA_HOME).`)
  }
  return java
}

async function readMarker(): Promise<Marker | undefined> {
  try {
    return JSON.parse(await readFile(MARKER, 'utf8')) as Marker
  } catch {
    return undefined
  }
}

async function cacheIsComplete(pomSha256: string): Promise<boolean> {
  const marker = await readMarker()
  if (marker?.pomSha256 !== pomSha256) return false
  const present = new Set(await readdir(LIB_DIR).catch(() => []))
  return marker.jars.length > 0 && marker.jars.every((jar) => present.has(jar))
}

/** The SLF4J binding must come from the same log4j2 release as the log4j-core Kafka brings. */
function checkLog4jBinding(jars: string[]): void {
  const version = (artifact: string): string | undefined =>
    jars.map((jar) => new RegExp(`^${artifact}-(\\d[^-]*)\\.jar$`).exec(jar)?.[1]).find(Boolean)
  const core = version('log4j-core')
  const binding = version('log4j-slf4j-impl')
  if (core === undefined || binding === undefined || core !== binding) {
    throw new KafkaSetupError(
      `log4j-core ${core ?? 'missing'} and log4j-slf4j-impl ${binding ?? 'missing'} differ: ` +
        'set <log4j.version> in scripts/kafka/pom.xml to the log4j-core version Kafka depends on ' +
        '(mvn -f scripts/kafka/pom.xml dependency:tree).',
    )
  }
}

/** Makes sure the jars are in .cache/kafka/lib; runs mvn only when the pom changed or jars are missing. */
export async function resolveKafka(): Promise<KafkaInstall> {
  const java = await checkJava()
  const pom = await readFile(POM)
  const pomSha256 = createHash('sha256').update(pom).digest('hex')
  if (await cacheIsComplete(pomSha256)) return { java, libDir: LIB_DIR, resolved: false }

  await mkdir(CACHE_DIR, { recursive: true })
  // Resolve into a private folder and swap it in, so a concurrent start never sees half a classpath.
  const staging = join(CACHE_DIR, `lib.${process.pid}.${Date.now()}`)
  const args = ['-B', '-q', '-Dstyle.color=never', '-f', fileURLToPath(POM), 'dependency:copy-dependencies']
  args.push(`-DoutputDirectory=${staging}`, '-DincludeScope=runtime')
  const { code, output } = await run(
    'mvn',
    args,
    'Maven (mvn) not found: apt-get install -y maven (it fetches Kafka from Maven Central).',
  )
  if (code !== 0) {
    await rm(staging, { recursive: true, force: true })
    throw new KafkaSetupError(`mvn ${args.join(' ')} failed (exit ${code}):\n${indent(tail(output))}`)
  }
  const jars = (await readdir(staging)).filter((name) => name.endsWith('.jar')).sort()
  checkLog4jBinding(jars)
  await writeFile(
    join(staging, '.resolved.json'),
    JSON.stringify({ pomSha256, jars } satisfies Marker, null, 2),
  )
  await rm(LIB_DIR, { recursive: true, force: true })
  await rename(staging, LIB_DIR)
  return { java, libDir: LIB_DIR, resolved: true }
}
