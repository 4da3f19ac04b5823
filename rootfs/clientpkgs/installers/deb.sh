#!/bin/sh
# shellcheck disable=SC2015 # "A && B || cw_die": any failure of A or B stops the installer, as meant
# cw deb installer: installs the cw-node DEB with apt-get or dpkg (README, "Installers and registration").
# Served by the head node with its URL on the next line and lib/common.sh in place of "# @cw-common".
CW_HEAD=
CW_LOG_NAME=CW_INSTALL_LOG
# @cw-common

cw_start "deb installer"
cw_have dpkg || cw_die "dpkg is not installed here: use the rpm or tar installer (?pkg=rpm, ?pkg=tar)"
_arch=$(dpkg --print-architecture 2>/dev/null)
cw_get "$CW_HEAD/api/v1/install/client/download/deb/cw-node" "$CW_WORK/cw-node.deb" 2>>"$CW_LOG" \
  || cw_die "cannot download cw-node.deb from $CW_HEAD"
_version=$(dpkg-deb -f "$CW_WORK/cw-node.deb" Version 2>>"$CW_LOG") || cw_die "the downloaded cw-node.deb is not a DEB"
cw_configure
if [ "$(dpkg-query -W -f '${Status} ${Version}' cw-node 2>/dev/null)" = "install ok installed $_version" ]; then
  cw_log "cw-node $_version is already installed: nothing to install"
else
  # confold: the node.conf just written stays (the package's is the empty template); no question on stdin.
  if cw_have apt-get; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
      "$CW_WORK/cw-node.deb" </dev/null >>"$CW_LOG" 2>&1 \
      || cw_die "apt-get install of cw-node $_version${_arch:+ ($_arch)} failed (see $CW_LOG)"
  else
    dpkg -i --force-confdef --force-confold "$CW_WORK/cw-node.deb" </dev/null >>"$CW_LOG" 2>&1 \
      || cw_die "dpkg -i of cw-node $_version failed (see $CW_LOG)"
  fi
  cw_log "installed cw-node $_version"
  cw_enable_services
fi
cw_done "deb installer"
