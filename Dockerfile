# syntax=docker/dockerfile:1
# The jouleflow exporter image (node:20). Also carries the fake libnvidia-ml and one recorded
# H200 training trace, so the same image runs the demo (docker-compose --profile demo).
#
#   docker build -t jouleflow-exporter .      (no registry? scripts/build-image.sh, with podman)
#   docker run -d -p 127.0.0.1:10042:10042 --pid=host -v /sys:/host/sys:ro -v /proc:/host/proc:ro \
#     -v jouleflow-data:/var/lib/jouleflow --user 0 --cap-drop ALL \
#     --cap-add DAC_READ_SEARCH --cap-add SYS_PTRACE jouleflow-exporter \
#     serve --path.sysfs=/host/sys --path.procfs=/host/proc --jobs.ledger=/var/lib/jouleflow/jobs.db
#
# The image runs as the unprivileged user jouleflow (uid 10042), which reads everything in /sys and
# /proc that is world-readable. Two readings need capabilities (README, "Container"):
# RAPL energy_uj is root-only (CVE-2020-8694): CAP_DAC_READ_SEARCH; /proc/PID/io and
# /proc/PID/environ of another user's job (mode 0400, ptrace-guarded): CAP_DAC_READ_SEARCH and
# CAP_SYS_PTRACE. Docker gives added capabilities to uid 0 only (no ambient capabilities), hence
# `--user 0 --cap-drop ALL --cap-add ...` above:
# root with two capabilities instead of Docker's default fourteen.

# ---- modules: every dependency, better-sqlite3 compiled once (here, for both stages below)
FROM node:20-bookworm AS modules
WORKDIR /src
# better-sqlite3 is compiled here: no prebuilt download from github.com, and node-gyp takes the
# headers the node image ships in /usr/local/include/node instead of fetching them from
# nodejs.org, so building the image needs no network beyond the npm registry.
ENV npm_config_build_from_source=better-sqlite3 npm_config_nodedir=/usr/local
# every workspace's package.json, so that npm ci matches the lock file
COPY package.json package-lock.json tsconfig.base.json ./
COPY exporter/package.json exporter/
COPY grafana-plugin/package.json grafana-plugin/
RUN npm ci --workspace exporter --include-workspace-root --no-audit --no-fund

# ---- build: compile the exporter (TypeScript) and the fake NVML library
FROM modules AS build
COPY exporter/ exporter/
RUN npm run build --workspace exporter
COPY test/fakes/nvml/ test/fakes/nvml/
RUN sh test/fakes/nvml/build.sh

# ---- production dependencies only (same Debian as the runtime: better-sqlite3 and koffi are
# native). Installed without scripts, then better-sqlite3 takes the binary compiled above instead
# of compiling a second time, and the other native packages run their install scripts (prebuilt
# binaries, no compiler).
FROM node:20-bookworm AS deps
WORKDIR /src
COPY package.json package-lock.json ./
COPY exporter/package.json exporter/
COPY grafana-plugin/package.json grafana-plugin/
RUN npm ci --workspace exporter --omit=dev --ignore-scripts --no-audit --no-fund && mkdir -p exporter/node_modules
COPY --from=modules /src/node_modules/better-sqlite3/build/Release/better_sqlite3.node node_modules/better-sqlite3/build/Release/
RUN npm rebuild koffi @serialport/bindings-cpp --no-audit --no-fund \
  && node -e "new (require('better-sqlite3'))(':memory:').prepare('select 1').get(); require('koffi')"

# ---- runtime
FROM node:20-bookworm-slim
ARG VERSION=unknown
ARG REVISION=unknown
# the repository URL: scripts/build-image.sh passes `git remote get-url origin`
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="jouleflow exporter" \
  org.opencontainers.image.description="Energy per ML training job (compute, transmit, store, cooling) as Prometheus metrics" \
  org.opencontainers.image.version="${VERSION}" \
  org.opencontainers.image.revision="${REVISION}" \
  org.opencontainers.image.source="${SOURCE}" \
  org.opencontainers.image.licenses="Apache-2.0" \
  org.opencontainers.image.base.name="docker.io/library/node:20-bookworm-slim"
ENV NODE_ENV=production
WORKDIR /opt/jouleflow
COPY --from=deps /src/package.json ./
COPY --from=deps /src/node_modules/ node_modules/
COPY --from=deps /src/exporter/package.json exporter/
COPY --from=deps /src/exporter/node_modules/ exporter/node_modules/
COPY --from=build /src/exporter/dist/ exporter/dist/
# the `jouleflow` launcher: the entrypoint, with its V8 flags (exporter/bin/jouleflow.js)
COPY exporter/bin/ exporter/bin/
# demo: fake NVML + a real H200 training trace + the demo runner
COPY --from=build /src/test/fakes/nvml/build/libnvidia-ml.so.1 test/fakes/nvml/build/
COPY test/fixtures/nvidia-h200/training-trace.json test/fixtures/nvidia-h200/
COPY scripts/demo.mjs scripts/
# The ledger directory belongs to jouleflow and to group 0 (mode 2770), so that both the default
# user and `--user 0` without CAP_DAC_OVERRIDE can write it.
RUN groupadd --system --gid 10042 jouleflow \
  && useradd --system --uid 10042 --gid jouleflow --home-dir /var/lib/jouleflow --shell /usr/sbin/nologin jouleflow \
  && mkdir -p /var/lib/jouleflow && chown 10042:0 /var/lib/jouleflow && chmod 2770 /var/lib/jouleflow
VOLUME /var/lib/jouleflow
# numeric, so that runtimes can check runAsNonRoot
USER 10042:10042
EXPOSE 10042
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
  CMD node -e "fetch('http://127.0.0.1:10042/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
ENTRYPOINT ["/opt/jouleflow/exporter/bin/jouleflow.js"]
CMD ["serve"]
