#!/usr/bin/env bash
# Build the cw-headnode image and export it as a loadable tarball (what `cw-containerctl
# img-load` takes).
#
#   scripts/build-image.sh [--engine docker|podman] [--ca FILE] [--out DIR] [--quiet]
#
#   --engine  engine that receives the image (default: the one cw-containerctl uses — CW_ENGINE,
#             else DOCKER_HOST, else Docker's socket, then Podman's; see `cw-containerctl engine`)
#   --ca      extra CA bundle (PEM) for HTTPS during the build, e.g. a TLS-intercepting proxy's
#             CA; defaults to $NODE_EXTRA_CA_CERTS when that names a file. Passed as a build
#             secret: trusted while building, never stored in the image.
#   --out     directory for the tarball and its checksum (default: build/)
#   --quiet   send the build output to OUT/build-image.log instead of stderr
#
# Writes OUT/cw-headnode-VERSION.tar (docker save format) and OUT/cw-headnode-VERSION.tar.sha256
# (sha256sum format); VERSION is package.json's version. Progress goes to stderr; the only line
# on stdout is the tarball's path, so `tarball=$(scripts/build-image.sh)` works.
#
# Environment: BASE (base image, default docker.io/library/debian:bookworm-slim; created with
# scripts/build-base.sh when missing), NPM_REGISTRY (npm registry or mirror for the build),
# IMAGE_NAME (default cw-headnode), CW_ENGINE (as --engine), BUILD_NETWORK (network of the build's
# RUN steps, default host; e.g. `default` for the engine's NAT), CW_NODE_VERSION and
# CW_NODE_INTEGRITY (the image's Node, e.g. 24.22.3 and its sha512-... or empty for the registry's;
# default: the newest 24.x the registry serves, asked with scripts/fetch-node.sh --resolve, or the
# Containerfile's defaults with a note when the registry cannot be asked).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE=${BASE:-docker.io/library/debian:bookworm-slim}
IMAGE_NAME=${IMAGE_NAME:-cw-headnode}
engine=${CW_ENGINE:-}
ca=""
out=""
quiet=0

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
die() { echo "ERROR: $*" >&2; exit 1; }
say() { echo "build-image: $*" >&2; }

while [ $# -gt 0 ]; do
  case $1 in
    --engine) engine=${2:?--engine needs docker or podman}; shift 2 ;;
    --engine=*) engine=${1#*=}; shift ;;
    --ca) ca=${2:?--ca needs a file}; shift 2 ;;
    --ca=*) ca=${1#*=}; shift ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --out=*) out=${1#*=}; shift ;;
    -q|--quiet) quiet=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

cd "$repo"
out=${out:-$repo/build}
mkdir -p "$out"
out=$(cd "$out" && pwd)

version=$(sed -n 's/^ *"version" *: *"\([^"]*\)".*/\1/p' package.json | head -n 1)
[ -n "$version" ] || die "no version in package.json"
image="$IMAGE_NAME:$version"
tarball="$out/$IMAGE_NAME-$version.tar"

# --- engine that receives the image ------------------------------------------------------------
# The same choice cw-containerctl makes (src/host/containerctl/engine/endpoint.ts), asked from it so
# that the image lands where `cw-containerctl start` looks: from the sources when tsx is installed,
# else the built CLI. Without Node, the same order by hand: DOCKER_HOST's engine, Docker, Podman.
engine_choice() {
  if command -v node >/dev/null; then
    if [ -e "$repo/node_modules/tsx/package.json" ]; then
      node --import tsx "$repo/src/host/containerctl/main.ts" engine --kind && return 0
      return 1
    elif [ -e "$repo/dist/host/containerctl/main.js" ]; then
      node "$repo/dist/host/containerctl/main.js" engine --kind && return 0
      return 1
    fi
  fi
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then echo docker
  elif command -v podman >/dev/null && podman info >/dev/null 2>&1; then echo podman
  else echo "ERROR: no working container engine: start dockerd, or install podman" >&2; return 1
  fi
}
if [ -z "$engine" ]; then
  engine=$(engine_choice) || die "cannot tell which container engine to build into (see above)"
fi
case $engine in
  docker|podman) ;;
  *) die "--engine must be docker or podman, not '$engine'" ;;
esac

# --- extra CA ----------------------------------------------------------------------------------
if [ -z "$ca" ] && [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -s "$NODE_EXTRA_CA_CERTS" ]; then
  ca=$NODE_EXTRA_CA_CERTS
fi
if [ -n "$ca" ]; then
  [ -s "$ca" ] || die "CA file '$ca' does not exist or is empty"
  grep -q 'BEGIN CERTIFICATE' "$ca" || die "CA file '$ca' holds no PEM certificate"
fi

# --- builder: BuildKit (for RUN --mount=type=secret) or podman/buildah -------------------------
# A docker client needs either the buildx plugin or a built-in BuildKit (clients before 23.0);
# newer clients without buildx cannot build with secrets, so look for another client.
docker_can_buildkit() {
  local client=$1 v
  "$client" buildx version >/dev/null 2>&1 && return 0
  v=$("$client" version --format '{{.Client.Version}}' 2>/dev/null) || return 1
  [ "${v%%.*}" -lt 23 ] 2>/dev/null
}
builder=""
if [ "$engine" = docker ]; then
  declare -A seen=()
  for c in $(type -ap docker) /usr/bin/docker /usr/local/bin/docker; do
    [ -x "$c" ] || continue
    real=$(readlink -f "$c")
    [ -z "${seen[$real]:-}" ] || continue
    seen[$real]=1
    if docker_can_buildkit "$c"; then builder=$c; break; fi
  done
  if [ -z "$builder" ]; then
    command -v podman >/dev/null || die "no docker client with BuildKit (install docker-buildx) and no podman to build with"
    builder=podman
    say "no docker client with BuildKit; building with podman and loading the result into docker"
  fi
else
  command -v podman >/dev/null || die "podman is not installed"
  builder=podman
fi
build_engine=$([ "$builder" = podman ] && echo podman || echo docker)
docker_cli=$([ "$engine" = docker ] && [ "$builder" != podman ] && echo "$builder" || echo docker)

# --- base image --------------------------------------------------------------------------------
BASE=$BASE bash "$repo/scripts/build-base.sh" --engine "$build_engine"

# --- Node for the image ------------------------------------------------------------------------
node_version=${CW_NODE_VERSION:-}
node_integrity=${CW_NODE_INTEGRITY:-}
if [ -n "$node_version" ]; then
  say "node $node_version (CW_NODE_VERSION)"
else
  resolve_err=$(mktemp)
  if resolved=$(bash "$repo/scripts/fetch-node.sh" --resolve 2>"$resolve_err"); then
    read -r node_version node_integrity <<<"$resolved"
    say "node $node_version (the newest 24.x on the registry)"
  else
    node_version=""
    node_integrity=""
    say "note: could not ask the registry for the newest Node 24 ($(tail -n 1 "$resolve_err"));" \
      "building with the Containerfile's default"
  fi
  rm -f "$resolve_err"
fi

# --- build -------------------------------------------------------------------------------------
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
revision=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
source_url=$(git -C "$repo" remote get-url origin 2>/dev/null || true)
args=(build --network "${BUILD_NETWORK:-host}" -f "$repo/Containerfile" -t "$image"
  --build-arg "BASE=$BASE" --build-arg "VERSION=$version" --build-arg "CREATED=$created"
  --build-arg "REVISION=$revision" --build-arg "SOURCE=$source_url"
  # The client packages' file times and build time: the last commit's, so a rebuild gives the same bytes.
  --build-arg "CLIENTPKGS_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)"
  # Also as --label: buildah's layer cache can reuse a LABEL step whose ARG values changed.
  --label "org.opencontainers.image.version=$version"
  --label "org.opencontainers.image.created=$created"
  --label "org.opencontainers.image.revision=$revision"
  --label "org.opencontainers.image.source=$source_url")
[ -z "${NPM_REGISTRY:-}" ] || args+=(--build-arg "NPM_REGISTRY=$NPM_REGISTRY")
# An empty NODE_INTEGRITY next to a given version makes the build take the registry's value.
[ -z "$node_version" ] || args+=(--build-arg "NODE_VERSION=$node_version" --build-arg "NODE_INTEGRITY=$node_integrity")
[ -z "$ca" ] || args+=(--secret "id=ca,src=$ca")
if [ "$builder" = podman ]; then
  args+=(--format docker --layers)
else
  args+=(--progress plain)
fi
args+=("$repo")

target_cli=$([ "$engine" = docker ] && echo "$docker_cli" || echo podman)
previous=$("$target_cli" image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)

log="$out/build-image.log"
say "building $image with $builder for $engine${ca:+ (extra CA: $ca)}"
start=$SECONDS
if [ "$quiet" = 1 ]; then
  if ! DOCKER_BUILDKIT=1 "$builder" "${args[@]}" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "image build failed (full log: $log)"
  fi
else
  DOCKER_BUILDKIT=1 "$builder" "${args[@]}" >&2 || die "image build failed"
fi
say "built $image in $((SECONDS - start))s"

# --- export ------------------------------------------------------------------------------------
tmp="$tarball.partial"
rm -f "$tmp"
if [ "$builder" = podman ]; then
  # Podman files the build under localhost/; save it under the name docker would give it, so
  # the tarball loads as cw-headnode:VERSION everywhere.
  podman tag "localhost/$image" "docker.io/library/$image"
  podman save --quiet --format docker-archive -o "$tmp" "docker.io/library/$image"
  podman rmi "docker.io/library/$image" >/dev/null 2>&1 || true
  if [ "$engine" = docker ]; then
    "$docker_cli" load -i "$tmp" >/dev/null
    say "loaded $image into docker"
  fi
else
  "$docker_cli" save -o "$tmp" "$image"
fi
chmod 0644 "$tmp"
mv -f "$tmp" "$tarball"
(cd "$out" && sha256sum "$(basename "$tarball")" >"$(basename "$tarball").sha256.partial" &&
  mv -f "$(basename "$tarball").sha256.partial" "$(basename "$tarball").sha256")

# A rebuild leaves the previous image untagged but still labelled as an appliance image; remove
# it unless a container still uses it (then rmi refuses, which is fine).
current=$("$target_cli" image inspect -f '{{.Id}}' "$image")
if [ -n "$previous" ] && [ "$previous" != "$current" ] &&
  [ "$("$target_cli" image inspect -f '{{len .RepoTags}}' "$previous" 2>/dev/null)" = 0 ]; then
  if "$target_cli" rmi "$previous" >/dev/null 2>&1; then
    say "removed the previous build ${previous#sha256:}"
  fi
fi

size=$("$target_cli" image inspect -f '{{.Size}}' "$image" 2>/dev/null || echo 0)
say "image $image: $((size / 1000000)) MB; tarball $(($(stat -c %s "$tarball") / 1000000)) MB"
echo "$tarball"
