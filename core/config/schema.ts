// Every setting of a Tributary process, read from TRIBUTARY_* environment variables. The README's
// configuration table is generated from this file (npm run docs:config).
import type { Variable } from './variables.ts'
import { flag, integer, list, oneOf, optionalSecret, optionalText, port, text } from './variables.ts'

const HOST_PORT = /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/

export const variables = {
  dataDir: text('TRIBUTARY_DATA_DIR', './data', {
    description: 'Directory of the embedded event log and the other embedded stores.',
  }),
  cacheDir: optionalText('TRIBUTARY_CACHE_DIR', {
    description:
      'Where ready-made empty registry databases are kept, so that a new data dir opens in well under a second instead of running initdb. Unset: `~/.cache/tributary`; `off`: none.',
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
  tenantTopicGraceMs: integer(
    'TRIBUTARY_TENANT_TOPIC_GRACE_MS',
    7 * 24 * 3_600_000,
    { min: 0, max: 365 * 86_400_000 },
    {
      description: 'How long the topics of a deleted tenant are kept before the processors delete them.',
    },
  ),
  deadLetterKeep: integer(
    'TRIBUTARY_DEADLETTER_KEEP',
    10_000,
    { min: 0, max: 1_000_000 },
    {
      description: 'Dead letters kept per tenant for listing through the API (the topic keeps them all).',
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
  kafkaSessionTimeoutMs: integer(
    'TRIBUTARY_KAFKA_SESSION_TIMEOUT_MS',
    30_000,
    { min: 6_000, max: 300_000 },
    {
      description:
        'Consumer group session timeout: how long a crashed process holds its partitions before another takes them over (heartbeats every tenth of it, at most 3 s). The broker bounds it (group.min/max.session.timeout.ms).',
    },
  ),
  kafkaLingerMs: integer(
    'TRIBUTARY_KAFKA_LINGER_MS',
    2,
    { min: 0, max: 1000 },
    {
      description:
        'Records published while a produce request is in flight go in the next one, sent no sooner than this after the oldest arrived; a publish to an idle producer goes at once.',
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
  databaseUrl: optionalText('TRIBUTARY_DATABASE_URL', {
    description:
      'PostgreSQL URL of the registry (`postgres://user:pass@host:5432/db`). Unset: PGlite in `<data dir>/registry`.',
    secret: true,
  }),
  registryKey: optionalText('TRIBUTARY_REGISTRY_KEY', {
    description:
      'Key that encrypts PSK keys at rest: 32 bytes, base64. Unset: generated once into `<data dir>/registry.key` (required with TRIBUTARY_DATABASE_URL).',
    secret: true,
  }),
  registryCacheTtlMs: integer(
    'TRIBUTARY_REGISTRY_CACHE_TTL_MS',
    300_000,
    { min: 1_000, max: 86_400_000 },
    {
      description:
        'Longest a credential lookup stays cached; registry change events invalidate entries sooner (within a second).',
    },
  ),
  apiPort: port('TRIBUTARY_API_PORT', 8080, {
    description:
      'Management REST API under /api/v1 (and its OpenAPI document and reference page). 0 picks a free port.',
  }),
  apiMaxBodyBytes: integer(
    'TRIBUTARY_API_MAX_BODY_BYTES',
    65_536,
    { min: 1_024, max: 16 * 1_048_576 },
    { description: 'Largest request body the management API reads; larger ones get 413.' },
  ),
  wsMaxConnections: integer(
    'TRIBUTARY_WS_MAX_CONNECTIONS',
    1_000,
    { min: 1, max: 100_000 },
    {
      description: 'Event WebSockets (`/api/v1/tenants/{t}/events`) open at once per process; more get 429.',
    },
  ),
  wsMaxConnectionsPerTenant: integer(
    'TRIBUTARY_WS_MAX_CONNECTIONS_PER_TENANT',
    50,
    { min: 1, max: 100_000 },
    { description: 'Event WebSockets one tenant may have open at once per process; more get 429.' },
  ),
  wsMaxBufferedBytes: integer(
    'TRIBUTARY_WS_MAX_BUFFERED_BYTES',
    4 * 1_048_576,
    { min: 65_536, max: 256 * 1_048_576 },
    {
      description:
        'Send buffer bound of one event WebSocket: past half of it the stream pauses until the client has read it down to a quarter; a client that takes over 30 s to do so is closed (1008).',
    },
  ),
  credentialRecheckMs: integer(
    'TRIBUTARY_CREDENTIAL_RECHECK_MS',
    30_000,
    { min: 1_000, max: 3_600_000 },
    {
      description:
        'How often the event WebSocket and the application MQTT broker check the credential of every open connection again: a revoked API token, a removed role or a disabled tenant ends the connection within this time.',
    },
  ),
  adminToken: optionalSecret('TRIBUTARY_ADMIN_TOKEN', 16, {
    description:
      'Bearer token with the admin role on every tenant, for bootstrap. At least 16 characters. Unset: none.',
  }),
  oidcJwksCacheMs: integer(
    'TRIBUTARY_OIDC_JWKS_CACHE_MS',
    600_000,
    { min: 1_000, max: 86_400_000 },
    { description: "How long a tenant issuer's remote JWKS is cached (an unknown key id refetches sooner)." },
  ),
  s3Bucket: optionalText('TRIBUTARY_S3_BUCKET', {
    description:
      'Bucket of the blob store (device files). Set: S3 or an S3-compatible service. Unset: files in `<data dir>/blobs`.',
  }),
  s3Endpoint: optionalText('TRIBUTARY_S3_ENDPOINT', {
    description: 'Endpoint of an S3-compatible service (`http://host:9000`). Unset: AWS S3 of the region.',
  }),
  s3Region: text('TRIBUTARY_S3_REGION', 'us-east-1', { description: 'Region of the bucket.' }),
  s3AccessKeyId: optionalText('TRIBUTARY_S3_ACCESS_KEY_ID', {
    description:
      'S3 access key id. Unset: the AWS SDK default credential chain (environment, profile, role).',
  }),
  s3SecretAccessKey: optionalText('TRIBUTARY_S3_SECRET_ACCESS_KEY', {
    description: 'S3 secret access key (with TRIBUTARY_S3_ACCESS_KEY_ID).',
    secret: true,
  }),
  s3ForcePathStyle: flag('TRIBUTARY_S3_FORCE_PATH_STYLE', false, {
    description: 'Path-style requests (`host/bucket/key`), which most S3-compatible services need.',
  }),
  filesMaxBytes: integer(
    'TRIBUTARY_FILES_MAX_BYTES',
    100 * 1_048_576,
    { min: 1, max: 5 * 1024 * 1_048_576 },
    { description: 'Largest file a device may upload; a longer body is cut off and nothing is kept.' },
  ),
  filesTokenTtlMs: integer(
    'TRIBUTARY_FILES_TOKEN_TTL_MS',
    300_000,
    { min: 1_000, max: 7 * 86_400_000 },
    { description: 'How long a file upload token stays good (it also works only once).' },
  ),
  filesDeviceRatePerMinute: integer(
    'TRIBUTARY_FILES_DEVICE_RATE',
    60,
    { min: 0, max: 60_000 },
    {
      description:
        'Upload tokens and presigned URLs one device may ask for per minute, over every protocol and process (429 with Retry-After past it). 0: no limit.',
    },
  ),
  filesMetricsDevices: integer(
    'TRIBUTARY_FILES_METRICS_DEVICES',
    1_000,
    { min: 0, max: 100_000 },
    {
      description:
        'Devices that get their own `device` label in the per-device file metrics of a process; the devices seen after them are counted as `device="(other)"`.',
    },
  ),
  filesDownloadTtlMs: integer(
    'TRIBUTARY_FILES_DOWNLOAD_TTL_MS',
    900_000,
    { min: 1_000, max: 7 * 86_400_000 },
    {
      description:
        'Longest life (and the default) of a file download URL: a presigned S3 GET, or a signed URL of the device HTTP listener.',
    },
  ),
  filesCacheTtlMs: integer(
    'TRIBUTARY_FILES_CACHE_TTL_MS',
    30_000,
    { min: 100, max: 3_600_000 },
    {
      description:
        'Life of a file metadata entry in the cluster state (Redis when configured, else the process): the longest a change made around the cache (a device or tenant deleted with its files) goes unseen.',
    },
  ),
  filesUploadUrl: optionalText('TRIBUTARY_FILES_UPLOAD_URL', {
    description:
      'Base URL of the device HTTP listener as devices reach it (`https://files.example.com`), for the `uploadUrl` of tokens asked for over MQTT and signed download URLs. Unset: `http://<address the device connected to>:<HTTP port>`.',
  }),
  redisUrl: optionalText('TRIBUTARY_REDIS_URL', {
    description:
      'Redis URL of the shared cluster state (sessions, rate limits, connection counts), `redis://host:6379`. Unset: in-process state (one process).',
    secret: true,
  }),
  mqttEnabled: flag('TRIBUTARY_MQTT_ENABLED', true, { description: 'Device MQTT over plain TCP.' }),
  mqttPort: port('TRIBUTARY_MQTT_PORT', 1883, { description: 'Device MQTT over TCP. 0 picks a free port.' }),
  mqttsEnabled: flag('TRIBUTARY_MQTTS_ENABLED', false, {
    description: 'Device MQTT over TLS (needs TRIBUTARY_MQTTS_CERT_FILE and TRIBUTARY_MQTTS_KEY_FILE).',
  }),
  mqttsPort: port('TRIBUTARY_MQTTS_PORT', 8883, {
    description: 'Device MQTT over TLS. 0 picks a free port.',
  }),
  mqttsCertFile: optionalText('TRIBUTARY_MQTTS_CERT_FILE', {
    description: 'PEM file of the TLS server certificate (with its chain) of the MQTT TLS listener.',
  }),
  mqttsKeyFile: optionalText('TRIBUTARY_MQTTS_KEY_FILE', {
    description: 'PEM file of the private key of the MQTT TLS server certificate.',
  }),
  mqttWsEnabled: flag('TRIBUTARY_MQTT_WS_ENABLED', true, {
    description: 'Device MQTT over WebSocket (path /mqtt, subprotocol mqtt).',
  }),
  mqttWsPort: port('TRIBUTARY_MQTT_WS_PORT', 8083, {
    description: 'Device MQTT over WebSocket. 0 picks a free port.',
  }),
  mqttMaxPayloadBytes: integer(
    'TRIBUTARY_MQTT_MAX_PAYLOAD_BYTES',
    262_144,
    { min: 16, max: 16 * 1_048_576 },
    { description: 'Largest MQTT message payload a device may publish; larger ones close the connection.' },
  ),
  mqttPublishRate: integer(
    'TRIBUTARY_MQTT_PUBLISH_RATE',
    100,
    { min: 1, max: 1_000_000 },
    {
      description:
        "Messages per second one device may publish (bursts up to twice that); a tenant's quota maxMessagesPerSecond overrides it.",
    },
  ),
  mqttMaxConnectionsPerTenant: integer(
    'TRIBUTARY_MQTT_MAX_CONNECTIONS_PER_TENANT',
    10_000,
    { min: 1, max: 10_000_000 },
    { description: 'Most MQTT connections one tenant may hold open across all instances.' },
  ),
  mqttConnectTimeoutMs: integer(
    'TRIBUTARY_MQTT_CONNECT_TIMEOUT_MS',
    10_000,
    { min: 100, max: 600_000 },
    { description: 'How long a new connection may take to send CONNECT before it is closed.' },
  ),
  httpEnabled: flag('TRIBUTARY_HTTP_ENABLED', true, {
    description: 'Device HTTP adapter (`POST /v1/<channel>`) and the TTN v3 webhook (`POST /ttn/v3`).',
  }),
  httpPort: port('TRIBUTARY_HTTP_PORT', 8088, {
    description: 'Device HTTP adapter and TTN webhook. 0 picks a free port.',
  }),
  httpMaxBodyBytes: integer(
    'TRIBUTARY_HTTP_MAX_BODY_BYTES',
    262_144,
    { min: 16, max: 16 * 1_048_576 },
    {
      description:
        'Largest request body the device HTTP adapter and the TTN webhook read; larger ones get 413.',
    },
  ),
  coapEnabled: flag('TRIBUTARY_COAP_ENABLED', true, { description: 'Device CoAP adapter (UDP, no DTLS).' }),
  coapPort: port('TRIBUTARY_COAP_PORT', 5683, {
    description: 'Device CoAP adapter (UDP). 0 picks a free port.',
  }),
  coapMaxPayloadBytes: integer(
    'TRIBUTARY_COAP_MAX_PAYLOAD_BYTES',
    65_536,
    { min: 16, max: 1_048_576 },
    { description: 'Largest CoAP request payload (after block-wise reassembly); larger ones get 4.13.' },
  ),
  commandTtlMs: integer(
    'TRIBUTARY_COMMAND_TTL_MS',
    60_000,
    { min: 0, max: 7 * 86_400_000 },
    {
      description:
        'How long a command waits for its device when the sender gives no ttl (app MQTT, Kafka, API without `ttl`).',
    },
  ),
  commandMaxWaitMs: integer(
    'TRIBUTARY_COMMAND_MAX_WAIT_MS',
    300_000,
    { min: 1_000, max: 3_600_000 },
    {
      description:
        "Longest a request may wait: the API `wait` for a response, and a device's `ct` for a command (HTTP, CoAP).",
    },
  ),
  commandLeaseMs: integer(
    'TRIBUTARY_COMMAND_LEASE_MS',
    120_000,
    { min: 1_000, max: 600_000 },
    {
      description:
        "How long an instance holds the commands it is delivering (longer than a CoAP confirmable delivery may wait, 93 s); a crashed instance's claims lapse after this.",
    },
  ),
  webhookAllowPrivate: flag('TRIBUTARY_WEBHOOK_ALLOW_PRIVATE', false, {
    description:
      'Let URLs a tenant chooses (webhook subscriptions, TTN downlink URLs, `oidc.jwksUri`) target `localhost` and loopback, link-local, private and other special-purpose addresses, and a JWKS or downlink URL use http. Off, such URLs are refused on write and at connect.',
  }),
  appMqttEnabled: flag('TRIBUTARY_APP_MQTT_ENABLED', true, {
    description: 'Application MQTT broker (consumers role): subscribe `app/<tenant>[/<channel>]` for events.',
  }),
  appMqttPort: port('TRIBUTARY_APP_MQTT_PORT', 1884, {
    description: 'Application MQTT broker over TCP. 0 picks a free port.',
  }),
  appMqttMaxConnections: integer(
    'TRIBUTARY_APP_MQTT_MAX_CONNECTIONS',
    10_000,
    { min: 1, max: 1_000_000 },
    { description: 'Most connections the application MQTT broker of one process holds open.' },
  ),
  appMqttMaxConnectionsPerTenant: integer(
    'TRIBUTARY_APP_MQTT_MAX_CONNECTIONS_PER_TENANT',
    1_000,
    { min: 1, max: 1_000_000 },
    {
      description:
        'Most application MQTT connections one tenant holds open on one process (CONNACK 5 past it).',
    },
  ),
  appMqttMaxSubscriptions: integer(
    'TRIBUTARY_APP_MQTT_MAX_SUBSCRIPTIONS',
    32,
    { min: 1, max: 10_000 },
    { description: 'Most topic filters one application MQTT connection may hold (SUBACK 0x80 past it).' },
  ),
  appMqttMaxQueueBytes: integer(
    'TRIBUTARY_APP_MQTT_MAX_QUEUE_BYTES',
    1_048_576,
    { min: 1_024, max: 1_073_741_824 },
    {
      description:
        'Bytes of events waiting for one slow application MQTT client; past it the client is dropped.',
    },
  ),
  appMqttMaxKeepaliveSeconds: integer(
    'TRIBUTARY_APP_MQTT_MAX_KEEPALIVE_S',
    300,
    { min: 5, max: 65_535 },
    { description: 'Keepalive an application MQTT client gets when it asks for none or for more (seconds).' },
  ),
} as const

/** Read by the command-line client (`tributary tenant|device|token`), never by the server. */
export const clientVariables = {
  TRIBUTARY_API_URL: 'Management API the CLI talks to (default `http://127.0.0.1:8080`).',
  TRIBUTARY_API_TOKEN: 'Bearer token the CLI sends: an API token, or the admin token.',
} as const

type Variables = typeof variables
export type Config = { readonly [K in keyof Variables]: Variables[K] extends Variable<infer T> ? T : never }
