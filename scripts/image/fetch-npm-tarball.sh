#!/bin/sh
# Fetch one package tarball from an npm registry, check it, and unpack it.
#
#   fetch-npm-tarball.sh NAME VERSION DEST_DIR [INTEGRITY]
#
# DEST_DIR receives the contents of the tarball's top directory (package/). INTEGRITY is an npm
# integrity string ("sha512-<base64>"); when it is empty the value the registry publishes for
# NAME@VERSION is used, so a download is never unpacked unchecked.
# Environment: NPM_REGISTRY (default https://registry.npmjs.org); curl honours CURL_CA_BUNDLE.
# Used inside the image build, where only curl, coreutils and tar can be relied on.
set -eu

name=${1:?usage: fetch-npm-tarball.sh NAME VERSION DEST_DIR [INTEGRITY]}
version=${2:?missing VERSION}
dest=${3:?missing DEST_DIR}
integrity=${4:-}
registry=${NPM_REGISTRY:-https://registry.npmjs.org}
registry=${registry%/}

fetch() {
  curl --fail --silent --show-error --location --retry 4 --retry-delay 2 --connect-timeout 20 "$@"
}

base=${name##*/}
tarball_url="$registry/$name/-/$base-$version.tgz"
if [ -z "$integrity" ]; then
  meta_name=$(printf '%s' "$name" | sed 's|/|%2f|')
  integrity=$(fetch "$registry/$meta_name/$version" \
    | grep -o '"integrity" *: *"sha512-[^"]*"' | head -n 1 | sed 's/.*"\(sha512-[^"]*\)"/\1/')
  [ -n "$integrity" ] || { echo "ERROR: no sha512 integrity published for $name@$version" >&2; exit 1; }
fi
case $integrity in
  sha512-*) ;;
  *) echo "ERROR: unsupported integrity '$integrity' for $name@$version (need sha512-...)" >&2; exit 1 ;;
esac
want=$(printf '%s' "${integrity#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetching $tarball_url" >&2
fetch --output "$tmp/pkg.tgz" "$tarball_url"
got=$(sha512sum "$tmp/pkg.tgz" | cut -d ' ' -f 1)
if [ "$got" != "$want" ]; then
  echo "ERROR: $name@$version: checksum mismatch (expected $integrity); a changed version needs" \
    "its own integrity value, or an empty one to use the registry's" >&2
  exit 1
fi
mkdir -p "$dest"
tar -xzf "$tmp/pkg.tgz" -C "$dest" --strip-components=1 --no-same-owner
echo "unpacked $name@$version into $dest" >&2
