#!/usr/bin/env bash
# Builds the CLI and prints the appliance figures (see bench/appliance.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
npm run -s build
exec npx tsx bench/appliance.ts "$@"
