#!/bin/sh
# Run a command with an extra CA trusted by curl, Node and npm, if the build was given one.
#
#   with-ca.sh COMMAND [ARG...]
#
# The image build mounts an optional secret with id "ca" (a PEM bundle, e.g. the CA of a
# TLS-intercepting corporate proxy) at /run/secrets/ca. It is added to, not substituted for, the
# system's trusted roots, and it never ends up in an image layer.
set -eu

secret=${CW_CA_SECRET:-/run/secrets/ca}
if [ -s "$secret" ]; then
  bundle=$(mktemp)
  trap 'rm -f "$bundle"' EXIT
  cat /etc/ssl/certs/ca-certificates.crt "$secret" >"$bundle" 2>/dev/null || cat "$secret" >"$bundle"
  export CURL_CA_BUNDLE="$bundle"
  export NODE_EXTRA_CA_CERTS="$secret"
  export npm_config_cafile="$bundle"
  echo "with-ca: trusting the extra CA bundle given to the build" >&2
  # Not exec: the trap must remove the combined bundle afterwards.
  "$@"
else
  exec "$@"
fi
