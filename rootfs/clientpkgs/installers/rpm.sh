#!/bin/sh
# shellcheck disable=SC2015 # "A && B || cw_die": any failure of A or B stops the installer, as meant
# cw rpm installer: installs the cw-node RPM with dnf, yum or rpm (README, "Installers and registration").
# Served by the head node with its URL on the next line and lib/common.sh in place of "# @cw-common".
CW_HEAD=
CW_LOG_NAME=CW_INSTALL_LOG
# @cw-common

cw_start "rpm installer"
cw_have rpm || cw_die "rpm is not installed here: use the deb or tar installer (?pkg=deb, ?pkg=tar)"
cw_get "$CW_HEAD/api/v1/install/client/download/rpm/cw-node?arch=$(uname -m)" "$CW_WORK/cw-node.rpm" 2>>"$CW_LOG" \
  || cw_get "$CW_HEAD/api/v1/install/client/download/rpm/cw-node" "$CW_WORK/cw-node.rpm" 2>>"$CW_LOG" \
  || cw_die "cannot download cw-node.rpm from $CW_HEAD"
_nevra=$(rpm -qp --nosignature "$CW_WORK/cw-node.rpm" 2>>"$CW_LOG") || cw_die "the downloaded cw-node.rpm is not an RPM"
# Configuration first: the package's %post finds /etc/cw/node.conf in place.
cw_configure
if rpm -q "$_nevra" >/dev/null 2>&1; then
  cw_log "$_nevra is already installed: nothing to install"
else
  if cw_have dnf; then
    dnf -y install "$CW_WORK/cw-node.rpm" </dev/null >>"$CW_LOG" 2>&1 || cw_die "dnf install of $_nevra failed (see $CW_LOG)"
  elif cw_have yum; then
    yum -y install "$CW_WORK/cw-node.rpm" </dev/null >>"$CW_LOG" 2>&1 || cw_die "yum install of $_nevra failed (see $CW_LOG)"
  else
    rpm -Uvh "$CW_WORK/cw-node.rpm" </dev/null >>"$CW_LOG" 2>&1 || cw_die "rpm -Uvh of $_nevra failed (see $CW_LOG)"
  fi
  cw_log "installed $_nevra"
  cw_enable_services
fi
cw_done "rpm installer"
