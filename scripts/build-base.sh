#!/usr/bin/env bash
# Make sure the Containerfile's base image exists in the engine, building it locally when no
# registry can provide it.
#
#   scripts/build-base.sh [--engine docker|podman] [--base IMAGE] [--force]
#
# Order: already present -> done; present in the other engine -> copied over; pull works ->
# done; otherwise `debootstrap --variant=minbase` a Debian tree, slim it the way the official
# *-slim images are (no docs, man pages, locales or apt lists; policy-rc.d) and import it under
# the expected name. --force skips the first three and rebuilds from debootstrap.
#
# Environment: BASE (default docker.io/library/debian:bookworm-slim), SUITE (bookworm),
# DEBIAN_MIRROR (http://deb.debian.org/debian), SECURITY_MIRROR (DEBIAN_MIRROR's
# debian-security sibling), CW_ENGINE (docker|podman), PULL_TIMEOUT (60).
set -euo pipefail

BASE=${BASE:-docker.io/library/debian:bookworm-slim}
SUITE=${SUITE:-bookworm}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-${DEBIAN_MIRROR%/debian}/debian-security}
PULL_TIMEOUT=${PULL_TIMEOUT:-60}
engine=${CW_ENGINE:-}
force=0

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
die() { echo "ERROR: $*" >&2; exit 1; }
say() { echo "build-base: $*" >&2; }

while [ $# -gt 0 ]; do
  case $1 in
    --engine) engine=${2:?--engine needs docker or podman}; shift 2 ;;
    --engine=*) engine=${1#*=}; shift ;;
    --base) BASE=${2:?--base needs an image name}; shift 2 ;;
    --base=*) BASE=${1#*=}; shift ;;
    --force) force=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

if [ -z "$engine" ]; then
  if docker info >/dev/null 2>&1; then engine=docker
  elif podman info >/dev/null 2>&1; then engine=podman
  else die "no working container engine (start dockerd or install podman)"
  fi
fi
case $engine in
  docker|podman) command -v "$engine" >/dev/null || die "$engine is not installed" ;;
  *) die "--engine must be docker or podman, not '$engine'" ;;
esac
other=$([ "$engine" = docker ] && echo podman || echo docker)

has_image() { "$1" image inspect "$BASE" >/dev/null 2>&1; }

if [ "$force" = 0 ]; then
  if has_image "$engine"; then
    say "$BASE already present in $engine"
    exit 0
  fi
  if command -v "$other" >/dev/null 2>&1 && "$other" info >/dev/null 2>&1 && has_image "$other"; then
    say "copying $BASE from $other to $engine"
    "$other" save "$BASE" | "$engine" load >/dev/null
    has_image "$engine" && { say "$BASE copied"; exit 0; }
    say "copy failed; trying other ways"
  fi
  if timeout "$PULL_TIMEOUT" "$engine" pull "$BASE" >/dev/null 2>&1; then
    say "pulled $BASE"
    exit 0
  fi
  say "$BASE cannot be pulled; building it with debootstrap ($SUITE, $DEBIAN_MIRROR)"
fi

[ "$(id -u)" = 0 ] || die "debootstrap needs root"
command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"

work=$(mktemp -d /var/tmp/cw-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
log=$work/debootstrap.log
start=$SECONDS
if ! debootstrap --variant=minbase "$SUITE" "$root" "$DEBIAN_MIRROR" >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  die "debootstrap failed"
fi
say "debootstrap done in $((SECONDS - start))s"

# The same sources an official Debian image uses, so images built on this base get updates.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $DEBIAN_MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

# Container conventions of the official images: no service starts from package scripts, no
# docs/man/locales, no apt caches kept.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
printf 'Acquire::GzipIndexes "true";\nAcquire::CompressionTypes::Order:: "gz";\n' \
  >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
printf 'APT::AutoRemove::SuggestsImportant "false";\n' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"

rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
  "$root"/var/log/* "$root"/tmp/* "$root"/var/tmp/* \
  "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/groff/* \
  "$root"/usr/share/lintian/* "$root"/usr/share/locale/*
find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
# The engine provides these per container.
rm -f "$root/etc/hostname" "$root/etc/resolv.conf"
: >"$root/etc/machine-id"

created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
tar -C "$root" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -cf - . |
  "$engine" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --message "debootstrap --variant=minbase $SUITE ($DEBIAN_MIRROR), $created" \
    - "$BASE" >/dev/null
has_image "$engine" || die "import of $BASE into $engine failed"
size=$("$engine" image inspect -f '{{.Size}}' "$BASE")
say "imported $BASE into $engine ($((size / 1000000)) MB) in $((SECONDS - start))s"
