#!/bin/sh
# Remove from a production node_modules tree what nothing loads at run time: documentation,
# type declarations, source maps, tests, examples and the sources/objects of compiled addons.
#
#   trim-node-modules.sh NODE_MODULES_DIR
set -eu

dir=${1:?usage: trim-node-modules.sh NODE_MODULES_DIR}
[ -d "$dir" ] || { echo "ERROR: $dir is not a directory" >&2; exit 1; }
before=$(du -sk "$dir" | cut -f 1)

# better-sqlite3 loads build/Release/better_sqlite3.node when one was compiled on purpose, else its
# prebuilt addon for this platform (glibc Linux here): keep only the one it loads, without the
# SQLite and addon sources.
bs3="$dir/better-sqlite3"
case $(uname -m) in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) arch=$(uname -m) ;;
esac
if [ -f "$bs3/build/Release/better_sqlite3.node" ]; then
  find "$bs3/build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
  find "$bs3/build/Release" -mindepth 1 -maxdepth 1 ! -name better_sqlite3.node -exec rm -rf {} +
  rm -rf "$bs3/prebuilds" "$bs3/deps" "$bs3/src" "$bs3/binding.gyp"
elif [ -f "$bs3/prebuilds/linux-$arch.node" ]; then
  find "$bs3/prebuilds" -mindepth 1 -maxdepth 1 ! -name "linux-$arch.node" -exec rm -rf {} +
  rm -rf "$bs3/build" "$bs3/deps" "$bs3/src" "$bs3/binding.gyp"
fi

find "$dir" -depth -type d \( \
    -name test -o -name tests -o -name __tests__ -o -name example -o -name examples \
    -o -name docs -o -name doc -o -name .github -o -name benchmark -o -name benchmarks \
    -o -name coverage -o -name .nyc_output \
  \) -prune -exec rm -rf {} +
find "$dir" -type f \( \
    -iname '*.md' -o -iname '*.markdown' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \
    -o -name '*.map' -o -name '*.ts.map' -o -name '.eslintrc*' -o -name '.prettierrc*' \
    -o -name '.editorconfig' -o -name '.travis.yml' -o -name 'tsconfig*.json' -o -name '*.tsbuildinfo' \
    -o -name 'Makefile' -o -name '*.gyp' -o -name '*.gypi' \
    -o -name '*.c' -o -name '*.cc' -o -name '*.cpp' -o -name '*.h' -o -name '*.hpp' \
  \) -delete

after=$(du -sk "$dir" | cut -f 1)
echo "trim-node-modules: ${before} KiB -> ${after} KiB" >&2
