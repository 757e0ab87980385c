import { describe, expect, it } from 'vitest'
import { loadConfig, redactedConfig } from '../../../core/config/load.ts'
import { configTable } from '../../../core/config/table.ts'
import { variables } from '../../../core/config/schema.ts'
import { isTributaryError } from '../../../core/errors.ts'

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env)
  } catch (err) {
    if (isTributaryError(err, 'CONFIG_INVALID')) return (err.details?.['problems'] as string[]) ?? []
    throw err
  }
  return []
}

describe('configuration', () => {
  it('fills every default from an empty environment', () => {
    const config = loadConfig({})
    expect(config).toMatchObject({
      dataDir: './data',
      managementPort: 9400,
      topicPrefix: 'tributary',
      kafkaBrokers: undefined,
      kafkaCompression: 'none',
      busMaxMessageBytes: 1_048_576,
    })
  })

  it('parses typed values', () => {
    const config = loadConfig({
      TRIBUTARY_KAFKA_BROKERS: 'k1:9092, k2:9092',
      TRIBUTARY_MANAGEMENT_PORT: '0',
      TRIBUTARY_LOG_LEVEL: 'debug',
      TRIBUTARY_BUS_RETENTION_MS: '-1',
    })
    expect(config.kafkaBrokers).toEqual(['k1:9092', 'k2:9092'])
    expect(config.managementPort).toBe(0)
    expect(config.logLevel).toBe('debug')
    expect(config.busRetentionMs).toBe(-1)
  })

  it('lists every problem at once, unknown names included, with a hint for typos', () => {
    const problems = problemsOf({
      TRIBUTARY_MANAGEMENT_PORT: '70000',
      TRIBUTARY_LOG_LEVEL: 'loud',
      TRIBUTARY_KAFKA_BROKERS: 'no-port,ok:1',
      TRIBUTARY_DATADIR: '/tmp',
      TRIBUTARY_KAFKA_COMPRESSION: 'brotli',
    })
    expect(problems).toEqual([
      'TRIBUTARY_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
      'TRIBUTARY_MANAGEMENT_PORT must be an integer from 0 to 65535, got "70000"',
      'TRIBUTARY_KAFKA_BROKERS "no-port" is not host:port',
      'TRIBUTARY_KAFKA_COMPRESSION must be one of none, gzip, snappy, lz4, zstd, got "brotli"',
      'TRIBUTARY_DATADIR is not a Tributary setting (did you mean TRIBUTARY_DATA_DIR?)',
    ])
  })

  it('gives a loggable form with every setting', () => {
    const redacted = redactedConfig(loadConfig({}))
    expect(Object.keys(redacted).sort()).toEqual(Object.keys(variables).sort())
  })

  it('documents every variable in the generated table', () => {
    const table = configTable()
    for (const v of Object.values(variables)) expect(table).toContain(`| \`${v.env}\` |`)
  })
})
