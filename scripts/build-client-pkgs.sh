#!/usr/bin/env bash
# Build the node client package cw-node, from one source (rootfs/node/), as an RPM and a DEB.
#
#   scripts/build-client-pkgs.sh [--out DIR]
#
#   --out   directory for the packages (default: build/clientpkgs)
#
# Writes, with VERSION from package.json (the appliance's version):
#   OUT/rpm/cw-node-VERSION-1.noarch.rpm     rpmbuild
#   OUT/deb/cw-node_VERSION-1_all.deb         dpkg-deb
# The image build copies them into the image; the appliance puts them into STORAGE/clientpkgs/{rpm,deb}
# at start. cw-node installs:
#   /usr/sbin/cw-node-agent                          the status agent booted nodes run too
#   /usr/lib/systemd/system/cw-status-updater.service  enabled by the package, never started by it
#   /etc/cw/node.conf                                a commented template (%config(noreplace) / conffile)
# The RPM's one %triggerin (on openssh-server) makes sure root's ~/.ssh exists with mode 0700, for the
# appliance's public key the installer adds. Needs rpmbuild (apt-get install rpm) and dpkg-deb; no
# network. The last lines on stdout are the paths of the packages written.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=""

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
die() { echo "ERROR: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case $1 in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --out=*) out=${1#*=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

command -v rpmbuild >/dev/null || die "rpmbuild is not installed (apt-get install rpm)"
command -v dpkg-deb >/dev/null || die "dpkg-deb is not installed (apt-get install dpkg)"

out=${out:-$repo/build/clientpkgs}
mkdir -p "$out/rpm" "$out/deb"
out=$(cd "$out" && pwd)

version=$(sed -n 's/^ *"version" *: *"\([^"]*\)".*/\1/p' "$repo/package.json" | head -n 1)
[[ $version =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || die "package.json's version '$version' cannot be a package version"
release=1
src=$repo/rootfs/node
for f in "$src/cw-node-agent" "$src/cw-node/cw-status-updater.service" "$src/cw-node/node.conf"; do
  [ -s "$f" ] || die "missing $f"
done
# Same bytes from the same commit: file times and rpm's build time come from the last commit.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

work=$(mktemp -d "${TMPDIR:-/tmp}/cw-client-pkgs.XXXXXX")
trap 'rm -rf "$work"' EXIT

UNIT=cw-status-updater.service
summary="CW node client: the status agent of a diskful node (cw-status-updater)"
description="Reports this node's status to the cw-headnode appliance every 10 seconds, like a node
booted by it. Configured in /etc/cw/node.conf (written by the head node's installer); the service
is enabled by the package but not started: reboot, or systemctl start $UNIT."

# --- the files, staged once -----------------------------------------------------------------------
root=$work/root
install -D -m 0755 "$src/cw-node-agent" "$root/usr/sbin/cw-node-agent"
install -D -m 0644 "$src/cw-node/$UNIT" "$root/usr/lib/systemd/system/$UNIT"
install -D -m 0644 "$src/cw-node/node.conf" "$root/etc/cw/node.conf"
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# The scripts both formats run. enable: systemctl works without a running systemd (in a chroot or
# during an image build); without systemctl there is nothing to enable, which is said, not failed.
enable_script="if command -v systemctl >/dev/null 2>&1; then
  systemctl enable $UNIT >/dev/null 2>&1 || echo \"cw-node: could not enable $UNIT\" >&2
else
  echo \"cw-node: no systemd here: run /usr/sbin/cw-node-agent from this system's init\" >&2
fi"
stop_script="if command -v systemctl >/dev/null 2>&1; then
  systemctl disable $UNIT >/dev/null 2>&1 || :
  if [ -d /run/systemd/system ]; then systemctl stop $UNIT >/dev/null 2>&1 || :; fi
fi"
# After an upgrade: restart only a running service, never start a stopped one.
upgrade_script="if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || :
  systemctl try-restart $UNIT >/dev/null 2>&1 || :
fi"
# mkdir, not install(1): busybox-based systems may lack the latter.
ssh_dir_script="if [ -d /root ] && [ ! -d /root/.ssh ]; then mkdir -m 0700 /root/.ssh 2>/dev/null || :; fi
chmod 0700 /root/.ssh 2>/dev/null || :"

written=()

# --- RPM ------------------------------------------------------------------------------------------
top=$work/rpmbuild
mkdir -p "$top"/{SPECS,RPMS,BUILD,BUILDROOT}
spec=$top/SPECS/cw-node.spec
cat >"$spec" <<EOF
Name: cw-node
Version: $version
Release: $release
Summary: $summary
License: Apache-2.0
BuildArch: noarch
Requires: curl
%define _build_id_links none
%define debug_package %{nil}
%define __os_install_post %{nil}
%define use_source_date_epoch_as_buildtime 1
# Not the build machine's name: the image build and a host build give the same bytes.
%define _buildhost cw-headnode
%define clamp_mtime_to_source_date_epoch 1

%description
$description

%install
mkdir -p %{buildroot}
cp -a "$root/." %{buildroot}/

%post
# First install only: an admin who disabled the service keeps it disabled across upgrades.
if [ "\$1" -eq 1 ]; then
$enable_script
fi

%preun
# Erase only (not the removal of the old version during an upgrade).
if [ "\$1" -eq 0 ]; then
$stop_script
fi

%postun
if [ "\$1" -ge 1 ]; then
$upgrade_script
fi

%triggerin -- openssh-server
# root's ~/.ssh for the appliance's public key (the installer adds it to authorized_keys).
$ssh_dir_script

%files
%defattr(-,root,root,-)
/usr/sbin/cw-node-agent
/usr/lib/systemd/system/$UNIT
%dir /etc/cw
%config(noreplace) /etc/cw/node.conf
EOF
rpmbuild --quiet --define "_topdir $top" -bb "$spec" >&2
rpm_name=cw-node-$version-$release.noarch.rpm
cp "$top/RPMS/noarch/$rpm_name" "$out/rpm/.$rpm_name.partial"
mv -f "$out/rpm/.$rpm_name.partial" "$out/rpm/$rpm_name"
written+=("$out/rpm/$rpm_name")

# --- DEB ------------------------------------------------------------------------------------------
debroot=$work/deb
cp -a "$root" "$debroot"
mkdir -p "$debroot/DEBIAN"
cat >"$debroot/DEBIAN/control" <<EOF
Package: cw-node
Version: $version-$release
Architecture: all
Maintainer: cw-headnode maintainers <cw-headnode@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$debroot" | cut -f 1)
Depends: curl
Section: admin
Priority: optional
Description: $summary
$(printf '%s\n' "$description" | sed 's/^/ /')
EOF
echo /etc/cw/node.conf >"$debroot/DEBIAN/conffiles"
cat >"$debroot/DEBIAN/postinst" <<EOF
#!/bin/sh
set -e
# configure with no previous version: the first install (upgrades keep the admin's choice).
if [ "\$1" = configure ]; then
  if [ -z "\${2:-}" ]; then
$(printf '%s\n' "$enable_script" | sed 's/^/    /')
  else
$(printf '%s\n' "$upgrade_script" | sed 's/^/    /')
  fi
  if [ -x /usr/sbin/sshd ] || [ -d /etc/ssh ]; then
$(printf '%s\n' "$ssh_dir_script" | sed 's/^/    /')
  fi
fi
exit 0
EOF
cat >"$debroot/DEBIAN/prerm" <<EOF
#!/bin/sh
set -e
if [ "\$1" = remove ]; then
$stop_script
fi
exit 0
EOF
cat >"$debroot/DEBIAN/postrm" <<EOF
#!/bin/sh
set -e
if [ "\$1" = remove ] || [ "\$1" = purge ]; then
  if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || :; fi
fi
# dpkg removes the conffile on purge; the node secret the installer wrote goes with it.
if [ "\$1" = purge ]; then
  rm -f /etc/cw/node-secret
  rmdir /etc/cw 2>/dev/null || :
fi
exit 0
EOF
chmod 0755 "$debroot/DEBIAN/postinst" "$debroot/DEBIAN/prerm" "$debroot/DEBIAN/postrm"
touch -h -d "@$SOURCE_DATE_EPOCH" "$debroot/DEBIAN" "$debroot/DEBIAN"/*
deb_name=cw-node_${version}-${release}_all.deb
dpkg-deb --root-owner-group -Zxz --build "$debroot" "$out/deb/.$deb_name.partial" >/dev/null
mv -f "$out/deb/.$deb_name.partial" "$out/deb/$deb_name"
written+=("$out/deb/$deb_name")

echo "build-client-pkgs: cw-node $version-$release: ${#written[@]} packages in $out" >&2
printf '%s\n' "${written[@]}"
