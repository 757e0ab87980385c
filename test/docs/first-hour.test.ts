// What a new user reads in the first hour says what the code does: the README's command summary
// lists every command as its --help does, the quick start shows how to watch events, the Testing
// section lists the prerequisites and the script that prepares them, the Kafka examples use the
// local broker's port, and the deployment docs describe Redis and the lock error as they are.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { synopses } from '../../main/cli/help.ts'

const read = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8')
const readme = read('README.md')
const section = (heading: string): string => {
  const start = readme.indexOf(`\n## ${heading}\n`)
  expect(start, `README has a section ${heading}`).toBeGreaterThan(0)
  const end = readme.indexOf('\n## ', start + 1)
  return readme.slice(start, end < 0 ? undefined : end)
}

describe('README', () => {
  it('lists every command with the options its --help gives', () => {
    const quickStart = section('Quick start')
    for (const synopsis of synopses()) expect(quickStart).toContain(synopsis)
    expect(quickStart).toContain('--password P | --password-stdin')
    expect(quickStart).toContain('--max-devices N')
  })

  it('shows how to watch events in the quick start, on the embedded bus too', () => {
    const quickStart = section('Quick start')
    expect(quickStart).toContain('npx tributary events tail --tenant demo')
    expect(quickStart).toContain('npx tributary tenant create acme')
    expect(readme).not.toMatch(/readable by this process only/)
  })

  it('lists the test prerequisites and the script that prepares a Debian machine, as CI uses it', () => {
    const testing = section('Testing')
    for (const need of [
      'Java 17',
      'Maven',
      'PostgreSQL',
      'Redis',
      'mosquitto-clients',
      'kcat',
      'libcoap3-bin',
    ])
      expect(testing).toContain(need)
    expect(testing).toContain('scripts/prepare-debian.sh')
    const ci = read('.ci/run')
    expect(ci).toContain('scripts/prepare-debian.sh packages')
    expect(ci).toContain('scripts/prepare-debian.sh services')
    const script = read('scripts/prepare-debian.sh')
    for (const pkg of ['postgresql', 'redis-server', 'createdb', 'trust']) expect(script).toContain(pkg)
  })

  it('points the Kafka examples at the local broker, 127.0.0.1:19092', () => {
    expect(readme).not.toContain('localhost:9092')
    expect(section('Topics and events')).toContain("bootstrapBrokers: ['127.0.0.1:19092']")
    expect(read('docs/examples/kafka-consumer.ts')).not.toContain('localhost:9092')
  })
})

describe('deployment docs', () => {
  const deployment = read('docs/deployment.md')
  const compose = read('docker-compose.yml')

  it('describe Redis as used, in the docs and the compose file', () => {
    expect(deployment).not.toMatch(/REDIS_URL` \(later\)/)
    expect(deployment).not.toMatch(/Redis and MinIO already run, but Tributary does not use them/)
    expect(compose).not.toMatch(/Redis and MinIO run unused/)
    expect(compose).toContain('TRIBUTARY_REDIS_URL: redis://redis:6379')
  })

  it('quote the lock error as the process prints it', () => {
    expect(deployment).not.toContain('`BUS_DATA_DIR_LOCKED`')
    const lock = read('core/bus/embedded/lock.ts')
    expect(lock).toContain('stop it or set another TRIBUTARY_DATA_DIR')
    expect(deployment.replaceAll('\n', ' ')).toContain(
      'is in use by pid <n>; stop it or set another TRIBUTARY_DATA_DIR',
    )
  })
})
