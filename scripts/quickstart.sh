#!/usr/bin/env bash
# One command from a checkout to a healthy cw-headnode on this host (also `npm run up`).
#
#   scripts/quickstart.sh [--install] [--engine docker|podman] [--storage DIR] [--rebuild] [-- START_OPTIONS...]
#
#   --install  install and/or start a container engine when none is running (apt-get on Debian/Ubuntu,
#              dnf on RHEL and clones); without it the exact commands are printed instead (asked
#              interactively on a terminal, never under CI=true or without one)
#   --engine   use this engine (default: $CW_ENGINE, else what cw-containerctl picks: DOCKER_HOST's
#              engine, else Docker's socket, then Podman's)
#   --storage  storage directory (default: ./cw_container_storage)
#   --rebuild  build the image even when build/cw-headnode-VERSION.tar exists
#   after --   options for `cw-containerctl start`, e.g. -- --http-port 8080
#
# Steps, each skipped when already done: check Node, npm ci, build the CLI, find (or start) a rootful
# engine, build the image (scripts/build-image.sh), load it (cw-containerctl img-load), start the head
# node (cw-containerctl start) and print what to do next. The engine is chosen once, printed, and used
# for every step (exported as CW_ENGINE). A second run says the head node is already running.
# Runs as root: the appliance needs a rootful engine (DHCP, ports below 1024).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
install=0
rebuild=0
engine=${CW_ENGINE:-}
storage=""
start_opts=()

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
die() { echo "ERROR: $*" >&2; exit 1; }
say() { echo "quickstart: $*"; }

while [ $# -gt 0 ]; do
  case $1 in
    --install) install=1; shift ;;
    --rebuild) rebuild=1; shift ;;
    --engine) engine=${2:?--engine needs docker or podman}; shift 2 ;;
    --engine=*) engine=${1#*=}; shift ;;
    --storage) storage=${2:?--storage needs a directory}; shift 2 ;;
    --storage=*) storage=${1#*=}; shift ;;
    --) shift; start_opts=("$@"); break ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
case $engine in
  ''|docker|podman) ;;
  *) die "--engine (or CW_ENGINE) must be docker or podman, not '$engine'" ;;
esac
storage=${storage:-$PWD/cw_container_storage}

[ "$(id -u)" = 0 ] || die "run as root (sudo $0): the head node needs a rootful engine for DHCP and ports below 1024"

# Whether we may change the system: --install, or a yes on a terminal (never under CI).
may_change() { # may_change QUESTION
  [ "$install" = 1 ] && return 0
  [ "${CI:-}" != true ] && [ -t 0 ] && [ -t 1 ] || return 1
  local answer
  read -r -p "quickstart: $1 [y/N] " answer || return 1
  case $answer in y|Y|yes|YES) return 0 ;; *) return 1 ;; esac
}
wait_for() { # wait_for SECONDS COMMAND...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 1
  done
}

# --- Node --------------------------------------------------------------------------------------
# Node 24 or later runs the CLI; an older Node with npm is enough to fetch the newest Node 24 from the
# npm registry into build/node24 (scripts/fetch-node.sh), which then runs every step.
node_ok() { command -v node >/dev/null && node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 24 ? 0 : 1)'; }
if ! node_ok; then
  command -v npm >/dev/null ||
    die "Node.js 24 is needed on this host, or any Node.js with npm to fetch it (Debian: apt-get install npm; RHEL: dnf install npm), or install the cw-tools package"
  say "node: $(node --version 2>/dev/null || echo none) is older than 24; fetching Node 24 from the npm registry into build/node24"
  bash "$repo/scripts/fetch-node.sh" "$repo/build/node24" >/dev/null
  export PATH=$repo/build/node24/bin:$PATH npm_config_nodedir=$repo/build/node24
  node_ok || die "build/node24/bin/node does not run"
fi
say "node: $(node --version) at $(command -v node)"
cd "$repo"

# --- npm ci and the CLI ------------------------------------------------------------------------
stamp=node_modules/.package-lock.json
if [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ]; then
  say "npm dependencies: up to date"
else
  say "npm ci"
  npm ci --no-audit --no-fund
fi
cli=dist/host/containerctl/main.js
if [ -f "$cli" ] && [ -z "$(find src -newer "$cli" -name '*.ts' -print -quit)" ]; then
  say "cw-containerctl: built"
else
  say "building cw-containerctl (npm run build)"
  npm run -s build
fi
ctl() { node "$repo/$cli" "$@"; }

# --- container engine --------------------------------------------------------------------------
systemd_runs() { [ -d /run/systemd/system ]; }
pkg_tool() { if command -v apt-get >/dev/null; then echo apt-get; elif command -v dnf >/dev/null; then echo dnf; else echo ""; fi; }

# The engine to set up when none answers: the one asked for, else Docker on Debian (docker.io),
# Podman on RHEL (whose repos ship no Docker; its `docker` package is Podman's wrapper).
setup_kind=$engine
if [ -z "$setup_kind" ]; then
  if command -v dockerd >/dev/null; then setup_kind=docker
  elif command -v podman >/dev/null; then setup_kind=podman
  elif [ "$(pkg_tool)" = dnf ]; then setup_kind=podman
  else setup_kind=docker
  fi
fi

install_cmd() {
  local tool pkgs
  tool=$(pkg_tool)
  if [ "$setup_kind" = docker ]; then pkgs="docker.io"; [ "$tool" = dnf ] && pkgs="docker-ce (from Docker's repository; or use --engine podman)"
  else pkgs="podman"
  fi
  case $tool in
    apt-get) echo "apt-get update && apt-get install -y $pkgs" ;;
    dnf) echo "dnf install -y $pkgs" ;;
    *) echo "install $pkgs with your package manager" ;;
  esac
}
start_cmd() {
  if [ "$setup_kind" = docker ]; then
    if systemd_runs; then echo "systemctl enable --now docker"; else echo "setsid dockerd >/var/log/dockerd.log 2>&1 </dev/null &"; fi
  else
    if systemd_runs; then echo "systemctl enable --now podman.socket"
    else echo "mkdir -p /run/podman && setsid podman system service --time=0 unix:///run/podman/podman.sock >/var/log/podman-service.log 2>&1 </dev/null &"
    fi
  fi
}
installed() { if [ "$setup_kind" = docker ]; then command -v dockerd >/dev/null; else command -v podman >/dev/null; fi; }

do_install() {
  local tool
  tool=$(pkg_tool)
  say "installing $setup_kind ($(install_cmd))"
  case $tool in
    apt-get) DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$([ "$setup_kind" = docker ] && echo docker.io || echo podman)" ;;
    dnf)
      [ "$setup_kind" = podman ] || die "Docker is not in the RHEL repositories: add Docker's repository and install docker-ce, or run with --engine podman"
      dnf install -y podman ;;
    *) die "no apt-get or dnf here: $(install_cmd)" ;;
  esac
}
do_start() {
  say "starting $setup_kind ($(start_cmd))"
  if [ "$setup_kind" = docker ]; then
    if systemd_runs; then systemctl enable --now docker
    else setsid dockerd >>/var/log/dockerd.log 2>&1 </dev/null &
    fi
    wait_for 60 docker info || die "dockerd did not answer within 60 s (see /var/log/dockerd.log or journalctl -u docker)"
  else
    if systemd_runs; then systemctl enable --now podman.socket
    else
      mkdir -p /run/podman
      setsid podman system service --time=0 unix:///run/podman/podman.sock >>/var/log/podman-service.log 2>&1 </dev/null &
    fi
    wait_for 30 test -S /run/podman/podman.sock || die "the Podman API socket did not appear within 30 s"
    wait_for 30 ctl --engine podman engine || die "Podman's API does not answer on /run/podman/podman.sock"
  fi
}

export CW_ENGINE=$engine
if ! choice=$(ctl engine 2>&1); then
  reason=${choice#ERROR: }
  [ -z "${DOCKER_HOST:-}${CONTAINER_HOST:-}" ] || die "$reason (DOCKER_HOST/CONTAINER_HOST names the engine: start it or unset the variable)"
  say "no running ${engine:-container} engine ($reason)"
  todo=()
  installed || todo+=("$(install_cmd)")
  todo+=("$(start_cmd)")
  what=$([ "${#todo[@]}" = 2 ] && echo "install and start" || echo "start")
  if may_change "$what $setup_kind now?"; then
    installed || do_install
    do_start
    export CW_ENGINE=$setup_kind
    choice=$(ctl engine)
  else
    echo "To $what $setup_kind, run as root:" >&2
    for c in "${todo[@]}"; do echo "    $c" >&2; done
    echo "then run $0 again (or run it with --install to let it do this)." >&2
    exit 1
  fi
fi
kind=$(ctl engine --kind)
export CW_ENGINE=$kind
say "$choice (used for every step; set CW_ENGINE or --engine to choose)"

# --- image ---------------------------------------------------------------------------------------
version=$(node -p 'require("./package.json").version')
image="cw-headnode:$version"
tarball="$repo/build/cw-headnode-$version.tar"
has_image() { ctl img-ls 2>/dev/null | grep -Eq "^([^ ]*/)?cw-headnode:$version "; }
if [ "$rebuild" = 0 ] && [ -s "$tarball" ]; then
  say "image tarball: $tarball (exists; --rebuild builds it again)"
else
  say "building the image into $kind (scripts/build-image.sh, several minutes)"
  bash scripts/build-image.sh --engine "$kind" --out "$repo/build" --quiet >/dev/null
fi
if has_image; then
  say "image $image: loaded in $kind"
else
  say "loading $tarball"
  ctl img-load "$tarball"
fi

# --- head node -----------------------------------------------------------------------------------
running=$(ctl status 2>/dev/null | awk 'NR > 1 && NF == 0 { exit } NR > 1 && $3 == "running" { print $1 }')
if [ -n "$running" ]; then
  say "cw-headnode is already running (container $running in $kind); nothing to start"
  ctl status
else
  ctl start "$storage" "$image" ${start_opts[@]+"${start_opts[@]}"}
fi

# --- next steps ------------------------------------------------------------------------------------
admin=${SUDO_USER:-admin1}
home=$(getent passwd "$admin" 2>/dev/null | cut -d: -f6 || true)
key=""
for k in id_ed25519.pub id_ecdsa.pub id_rsa.pub; do
  if [ -n "$home" ] && [ -f "$home/.ssh/$k" ]; then key="$home/.ssh/$k"; break; fi
done
cat <<EOF

Next steps (from this directory; after \`npm install -g .\` drop the \`npx\`):
  1. Add yourself as an admin (your ssh public key):
       npx cw-containerctl add-admin $admin @${key:-~/.ssh/id_ed25519.pub}
  2. Print the tools' settings and write them to ~/.cw/settings.ini (as the admin user):
       npx cw-containerctl tool-config
  3. Load your key into ssh-agent and talk to the head node:
       eval \`ssh-agent\` ; ssh-add
       npx cw-nodectl ls        # "ERROR: No nodes found, nothing was done" means it works
${choice^}. Check it with \`$kind ps\`; stop with \`npx cw-containerctl stop\`.
EOF
