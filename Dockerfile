# syntax=docker/dockerfile:1
# The jouleflow exporter image (node:20). Also carries the fake libnvidia-ml and one recorded
# H200 training trace, so the same image runs the demo (docker-compose --profile demo).
#
#   docker build -t jouleflow-exporter .
#   docker run --rm -p 10042:10042 --pid=host -v /sys:/host/sys:ro -v /proc:/host/proc:ro \
#     jouleflow-exporter serve --path.sysfs=/host/sys --path.procfs=/host/proc

# ---- build: compile the exporter (TypeScript) and the fake NVML library
FROM node:20-bookworm AS build
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
COPY exporter/ exporter/
RUN npm run build --workspace exporter
COPY test/fakes/nvml/ test/fakes/nvml/
RUN sh test/fakes/nvml/build.sh

# ---- production dependencies only (better-sqlite3 and koffi are native: same base as runtime)
FROM node:20-bookworm AS deps
WORKDIR /src
ENV npm_config_build_from_source=better-sqlite3 npm_config_nodedir=/usr/local
COPY package.json package-lock.json ./
COPY exporter/package.json exporter/
COPY grafana-plugin/package.json grafana-plugin/
RUN npm ci --workspace exporter --omit=dev --no-audit --no-fund && mkdir -p exporter/node_modules

# ---- runtime
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /opt/jouleflow
COPY --from=deps /src/package.json ./
COPY --from=deps /src/node_modules/ node_modules/
COPY --from=deps /src/exporter/package.json exporter/
COPY --from=deps /src/exporter/node_modules/ exporter/node_modules/
COPY --from=build /src/exporter/dist/ exporter/dist/
# demo: fake NVML + a real H200 training trace + the demo runner
COPY --from=build /src/test/fakes/nvml/build/libnvidia-ml.so.1 test/fakes/nvml/build/
COPY test/fixtures/nvidia-h200/training-trace.json test/fixtures/nvidia-h200/
COPY scripts/demo.mjs scripts/
RUN mkdir -p /var/lib/jouleflow
VOLUME /var/lib/jouleflow
# Root: RAPL energy_uj is root-only (CVE-2020-8694) and /proc/PID/io needs the same uid or
# CAP_SYS_PTRACE. Drop to a user with --user if you need neither.
USER root
EXPOSE 10042
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
  CMD node -e "fetch('http://127.0.0.1:10042/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
ENTRYPOINT ["node", "/opt/jouleflow/exporter/dist/main.js"]
CMD ["serve"]
