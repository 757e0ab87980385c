// Every setting of a Tributary process, read from TRIBUTARY_* environment variables. The README's
// configuration table is generated from this file (npm run docs:config).
import type { Variable } from './variables.ts'
import { integer, list, oneOf, port, text } from './variables.ts'

const HOST_PORT = /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/

export const variables = {
  dataDir: text('TRIBUTARY_DATA_DIR', './data', {
    description: 'Directory of the embedded event log and the other embedded stores.',
  }),
  host: text('TRIBUTARY_HOST', '0.0.0.0', { description: 'Address every listener binds to.' }),
  logLevel: oneOf(
    'TRIBUTARY_LOG_LEVEL',
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    'info',
    {
      description: 'Log level (logs are JSON lines on stdout).',
    },
  ),
  topicPrefix: text('TRIBUTARY_TOPIC_PREFIX', 'tributary', {
    description: 'Prefix of every topic name (`<prefix>.ingress`, `<prefix>.events.<tenant>`, ...).',
  }),
  topicPartitions: integer(
    'TRIBUTARY_TOPIC_PARTITIONS',
    6,
    { min: 1, max: 1000 },
    {
      description: 'Partitions of the pipeline topics when Tributary creates them.',
    },
  ),
  managementPort: port('TRIBUTARY_MANAGEMENT_PORT', 9400, {
    description: 'Management listener: /livez, /readyz, /health, /metrics. 0 picks a free port.',
  }),
  shutdownTimeoutMs: integer(
    'TRIBUTARY_SHUTDOWN_TIMEOUT_MS',
    10_000,
    { min: 100, max: 600_000 },
    {
      description: 'How long a graceful shutdown may drain in-flight work before it stops anyway.',
    },
  ),
  kafkaBrokers: list('TRIBUTARY_KAFKA_BROKERS', HOST_PORT, 'host:port', {
    description: 'Comma-separated Kafka bootstrap brokers. Set: the Kafka bus. Unset: the embedded file log.',
  }),
  kafkaClientId: text('TRIBUTARY_KAFKA_CLIENT_ID', 'tributary', { description: 'Kafka client id.' }),
  kafkaCompression: oneOf('TRIBUTARY_KAFKA_COMPRESSION', ['none', 'gzip', 'snappy', 'lz4', 'zstd'], 'none', {
    description: 'Compression of produced record batches.',
  }),
  kafkaLingerMs: integer(
    'TRIBUTARY_KAFKA_LINGER_MS',
    2,
    { min: 0, max: 1000 },
    {
      description: 'How long the producer waits to fill a batch before sending it.',
    },
  ),
  kafkaBatchMaxBytes: integer(
    'TRIBUTARY_KAFKA_BATCH_MAX_BYTES',
    1_048_576,
    { min: 1024, max: 64 * 1_048_576 },
    {
      description: 'Largest produce request the producer builds, in bytes.',
    },
  ),
  busMaxMessageBytes: integer(
    'TRIBUTARY_BUS_MAX_MESSAGE_BYTES',
    1_048_576,
    { min: 1024, max: 64 * 1_048_576 },
    {
      description: 'Largest record (key, value and headers) a topic accepts; larger ones are refused.',
    },
  ),
  busSegmentBytes: integer(
    'TRIBUTARY_BUS_SEGMENT_BYTES',
    64 * 1_048_576,
    { min: 4096, max: 1024 * 1_048_576 },
    {
      description: 'Embedded log: size at which a partition rolls to a new segment file.',
    },
  ),
  busRetentionMs: integer(
    'TRIBUTARY_BUS_RETENTION_MS',
    7 * 24 * 3_600_000,
    { min: -1, max: Number.MAX_SAFE_INTEGER },
    {
      description: 'Default retention by age of the topics Tributary creates (-1 keeps forever).',
    },
  ),
  busRetentionBytes: integer(
    'TRIBUTARY_BUS_RETENTION_BYTES',
    -1,
    { min: -1, max: Number.MAX_SAFE_INTEGER },
    {
      description: 'Default retention by size per partition of the topics Tributary creates (-1 = no limit).',
    },
  ),
} as const

type Variables = typeof variables
export type Config = { readonly [K in keyof Variables]: Variables[K] extends Variable<infer T> ? T : never }
