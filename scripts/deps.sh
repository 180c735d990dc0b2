#!/usr/bin/env bash
# Installs the Debian packages the tests, the demo and the image build use:
# run by .ci/run on a fresh Debian bookworm machine and by `make deps`.
# Idempotent: with everything in place it changes nothing and needs no
# network.
#
# QEMU comes from bookworm-backports (QEMU 10): bookworm's 7.2 has no
# raspi4b machine. Its binaries, modules and data must be the same
# version (a lone 10.0 binary aborts on 7.2's modules), so they are
# installed together from that suite.
set -euo pipefail

PKGS=(make rsync tar dosfstools mtools fdisk e2fsprogs acl attr util-linux
	ipxe-qemu cpio xz-utils zstd pigz gzip bzip2 lzip lzop lz4 file
	openssh-server openssh-client partclone samba smbclient nfs-ganesha nfs-ganesha-vfs rpcbind
	binutils ca-certificates)
QEMU_PKGS=(qemu-system-arm qemu-system-x86 qemu-system-common qemu-system-data qemu-utils)
QEMU_MAJOR=10

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	echo "deps: not root or no apt-get: install by hand ${PKGS[*]} and, from a backports suite, QEMU >= $QEMU_MAJOR (${QEMU_PKGS[*]})" >&2
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive

# shellcheck disable=SC1091
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
backports=$codename-backports
etc=${APT_ETC:-/etc/apt} # another folder only to try this script

installed() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q 'install ok installed'; }
# qemu_ok: every QEMU package is installed at the wanted major version.
qemu_ok() {
	local p v
	for p in "${QEMU_PKGS[@]}"; do
		v=$(dpkg-query -W -f='${Status} ${Version}\n' "$p" 2>/dev/null) || return 1
		[[ $v == "install ok installed "* ]] || return 1
		v=${v##* }   # 1:10.0.2+ds-2+deb13u1~bpo12+1
		v=${v#*:}    # drop the epoch
		[ "${v%%.*}" -ge "$QEMU_MAJOR" ] || return 1
	done
}

# mirror is the URI the system already uses for the main suite, so the
# backports suite comes from the same place (deb822 sources first, then the
# one-line format).
mirror() {
	local f
	for f in "$etc"/sources.list.d/*.sources; do
		[ -e "$f" ] || continue
		awk -v s="$codename" '
			/^$/ { if (u != "" && ok) { print u; exit } u = ""; ok = 0 }
			/^URIs:/ { u = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
			END { if (u != "" && ok) print u }' "$f" | head -n1
	done | head -n1 | grep . && return
	grep -hE "^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?[a-z]+://[^[:space:]]+[[:space:]]+$codename[[:space:]]" \
		"$etc"/sources.list "$etc"/sources.list.d/*.list 2>/dev/null |
		sed -E 's/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' | awk '{ print $1; exit }' | grep . && return
	echo http://deb.debian.org/debian
}

missing=()
for p in "${PKGS[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ] && qemu_ok; then
	exit 0
fi

if ! grep -rqsE "^[^#]*\b$backports\b" "$etc"/sources.list "$etc"/sources.list.d/; then
	uri=$(mirror)
	echo "deps: adding $backports from $uri (QEMU $QEMU_MAJOR)" >&2
	cat >"$etc"/sources.list.d/"$backports".sources <<SRC
Types: deb
URIs: $uri
Suites: $backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
	apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! qemu_ok; then
	apt-get install -y -qq -t "$backports" "${QEMU_PKGS[@]}" >/dev/null
fi
qemu_ok || { echo "deps: QEMU from $backports is not version $QEMU_MAJOR: $(qemu-system-aarch64 --version | head -n1)" >&2; exit 1; }
