/** Boundaries of DESIGN.md "Layout": core stands alone, roles do not reach into each other. */
const protocolLibraries =
  '^(aedes|coap|mqtt|mqtt-packet|ws|hono|@hono/node-server|@platformatic/kafka|kafkajs)($|/)'

module.exports = {
  forbidden: [
    {
      name: 'core-stands-alone',
      comment: 'core/ imports nothing of ours outside core/.',
      severity: 'error',
      from: { path: '^core/' },
      to: { path: '^(adapters|processors|consumers|commands|api|main)/' },
    },
    {
      name: 'kafka-client-in-bus-only',
      comment: 'Only core/bus/kafka*.ts talks to the Kafka client.',
      severity: 'error',
      from: { pathNot: '^core/bus/kafka[^/]*\\.ts$' },
      to: { path: 'node_modules/@platformatic/kafka/' },
    },
    {
      name: 's3-client-in-blobs-only',
      comment: 'Only core/blobs/s3*.ts talks to the S3 client.',
      severity: 'error',
      from: { pathNot: '^core/blobs/s3[^/]*\\.ts$' },
      to: { path: 'node_modules/@aws-sdk/' },
    },
    {
      name: 'processors-know-no-protocol',
      comment: 'Processors import no adapter, consumer or protocol library.',
      severity: 'error',
      from: { path: '^processors/' },
      to: { path: ['^(adapters|consumers)/', `node_modules/${protocolLibraries}`] },
    },
    {
      name: 'consumers-read-topics-only',
      comment:
        'Consumers deliver what is on the tenant topics: they import no adapter, processor or command code (the WebSocket stream, served on the API listener, may use its auth and problem helpers).',
      severity: 'error',
      from: { path: '^consumers/' },
      to: { path: '^(adapters|processors|commands)/' },
    },
    {
      name: 'adapters-stay-apart',
      comment: 'An adapter never imports another adapter; adapters/adapter.ts is the shared seam.',
      severity: 'error',
      from: { path: '^adapters/([^/]+)/' },
      to: { path: '^adapters/([^/]+)/', pathNot: '^adapters/$1/' },
    },
    {
      name: 'roles-wired-by-main-only',
      comment: 'Only the composition root (main/) wires roles together.',
      severity: 'error',
      from: { path: '^(adapters|processors|consumers|commands|api)/' },
      to: { path: '^main/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
  },
}
