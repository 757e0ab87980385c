# syntax=docker/dockerfile:1
# Tributary's image. Node 24 runs the TypeScript sources directly (type stripping), so nothing is
# compiled: one stage installs the production dependencies, one builds the web console's static
# files, and the last runs the sources.
#
# The base image is pinned by tag to the Node release that package.json pins (the `node`
# devDependency); test/deploy/compose.int.test.ts checks that the two agree. Pin it by digest as well
# (node:<version>-slim@sha256:...) where a registry can be asked: this file was written offline,
# where no digest could be looked up.
ARG NODE_VERSION=24.21.0

FROM node:${NODE_VERSION}-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev: the `node` devDependency only brings Node 24 to machines whose Node is older; here the
# base image's Node runs. --ignore-scripts: no runtime dependency needs an install script.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# The web console (console/, Preact built by Vite) needs the dev dependencies to build: a stage of
# its own, whose static files alone reach the image.
FROM node:${NODE_VERSION}-slim AS console
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --ignore-scripts --no-audit --no-fund
COPY console ./console
COPY scripts/console-build.ts ./scripts/console-build.ts
RUN node scripts/console-build.ts --force

FROM node:${NODE_VERSION}-slim AS runtime
ENV NODE_ENV=production \
    TRIBUTARY_DATA_DIR=/var/lib/tributary
WORKDIR /app
# The data dir belongs to the runtime user; the code stays root-owned, so the process cannot change it.
# A named volume mounted here starts with this ownership.
RUN mkdir -p /var/lib/tributary && chown node:node /var/lib/tributary
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
# One COPY per folder: COPY of several directories would merge their contents into one.
COPY core ./core
COPY adapters ./adapters
COPY processors ./processors
COPY consumers ./consumers
COPY commands ./commands
COPY api ./api
COPY main ./main
COPY schemas ./schemas
COPY --from=console /app/console/dist ./console/dist
USER node
# management, API, device HTTP, device MQTT (TCP, TLS, WebSocket), CoAP, application MQTT
EXPOSE 9400 8080 8088 1883 8883 8083 5683/udp 1884
# The slim image has no curl; node's fetch does the request. Liveness only: readiness depends on
# the backends, which an orchestrator (see docker-compose.yml) checks through /readyz.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.TRIBUTARY_MANAGEMENT_PORT || 9400) + '/livez', { signal: AbortSignal.timeout(2500) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The process drains in-flight work on SIGTERM (TRIBUTARY_SHUTDOWN_TIMEOUT_MS); give it that long
# before the engine kills it (docker stop -t, compose stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--liftoff-only", "main/cli.ts"]
CMD ["start"]
