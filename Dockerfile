# termgate agent image. Two stages: `build` compiles and packs the npm package (the same tarball
# `npm pack` makes), the runtime stage holds only that package's files and its production dependencies
# (node-datachannel's prebuilt native addon among them).
#
#   docker build --network host -t termgate:0.1.0 .
#
# BASE_IMAGE is any image with Node.js >= 20.19 and npm in /usr/local (the official node images). Where
# none can be pulled, scripts/local-base-image.sh makes one from the host's own node (see the README).
# The build stage needs the npm registry; the runtime image needs no network but the host's (ICE).
ARG BASE_IMAGE=node:20-bookworm-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /src
ARG NPM_LOGLEVEL=notice
# Dependencies first, so a change of code reuses this layer. No install scripts run: the one native
# module the agent needs comes prebuilt, and nothing else gets to compile or download at build time.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund --loglevel=${NPM_LOGLEVEL}
COPY tsconfig.json tsconfig.build.json README.md ./
COPY bin bin
COPY deploy deploy
COPY scripts/build-web.mjs scripts/
COPY src src
COPY common common
COPY standin standin
COPY workers workers
COPY web web
# `npm pack` builds (prepack) and packs exactly the package's `files` with its production dependencies
# bundled (the tarball `npm pack` gives operators); the runtime stage gets that and nothing else.
RUN npm pack --loglevel=${NPM_LOGLEVEL} \
  && mkdir /out \
  && tar -xzf termgate-*.tgz -C /out

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="termgate agent" \
      org.opencontainers.image.description="WebRTC terminals from browsers into docker exec PTYs of vPLC containers"
COPY --from=build /out/package /opt/termgate
RUN ln -s /opt/termgate/bin/termgate /opt/termgate/bin/termgate-probe /usr/local/bin/
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    TERMGATE_METRICS_LISTEN=127.0.0.1:9464
# Root, but with almost no capabilities: the documented `docker run` drops all but KILL, SYS_PTRACE and
# DAC_READ_SEARCH. The agent ends each shell by signalling its processes in the host PID namespace and
# finds them by reading /proc/<pid>/environ of other users' processes; Docker grants capabilities only to
# root inside the container (none to another user), so a non-root agent could do neither.
USER root
WORKDIR /opt/termgate
# Liveness: the process answers on its observability port (see the README's Deploy section).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "/opt/termgate/dist/src/health-probe.js", "/healthz"]
# SIGTERM drains: every session told `shutdown`, every shell ended. Give it 45 s (`--stop-timeout 45`):
# the drain is bounded at about 30 s, and Docker's default of 10 s would cut it short.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/opt/termgate/bin/termgate"]
CMD ["agent"]
