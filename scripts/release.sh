#!/bin/bash
# Builds every release artefact into $OUT/release (default out/release):
#   backupctl_<version>_{amd64,arm64,armhf}.deb       packaging/mkdeb
#   recovery-<board>.img.xz + .img.xz.sha256           buildimage -compress xz, per Pi board
#   os_list.json + pibackup-recovery.svg               packaging/imagerjson (Raspberry Pi Imager repository)
#   SHA256SUMS                                         everything above
# `make release` runs it with VERSION, COMMIT and DATE set. The images take
# a while (the initramfs is built once per architecture; each image is xz
# compressed); BOARDS="pi4" builds fewer.
#
# RELEASE_BASE_URL is where the files will be downloaded from; it goes into
# os_list.json. Default: the GitHub release of VERSION.
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
OUT=${OUT:-out}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
COMMIT=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || true)}
DATE=${DATE:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
BOARDS=${BOARDS:-"rpi-arm64 pi3 pi4 pi5 zero2w cm4"}   # the QEMU boards are for tests only
RELEASE_BASE_URL=${RELEASE_BASE_URL:-https://github.com/pibackup/pibackup/releases/download/$VERSION/}
REL=$OUT/release
BUILD=$OUT/release-build

rm -rf "$REL" "$BUILD"
mkdir -p "$REL" "$BUILD"
start=$SECONDS

echo "== Debian packages ($VERSION)"
"$GO" run ./packaging/mkdeb -version "$VERSION" -commit "$COMMIT" -date "$DATE" -o "$REL"

echo "== buildimage"
"$GO" build -o "$BUILD/buildimage" ./buildimage

# One initramfs per architecture, built with the first board and reused
# by the others (it does not depend on the board): every image of the
# release carries the same recovery build even if the tree changes while
# the release builds, and each further board takes seconds, not minutes.
declare -A initramfs
for b in $BOARDS; do
	echo "== recovery image $b"
	arch=$(sed -n 's/^arch *= *"\(.*\)".*/\1/p' "board-configs/$b.toml")
	[ -n "$arch" ] || { echo "board-configs/$b.toml: no arch" >&2; exit 1; }
	prebuilt=()
	if [ -n "${initramfs[$arch]:-}" ]; then
		prebuilt=(-initramfs "${initramfs[$arch]}")
	fi
	"$BUILD/buildimage" -board "$b" -o "$BUILD/recovery-$b.img" -compress xz -version "$VERSION" "${prebuilt[@]}"
	if [ -z "${initramfs[$arch]:-}" ]; then
		initramfs[$arch]=$BUILD/recovery-$b.initramfs.cpio.zst
		[ -f "${initramfs[$arch]}" ] || { echo "buildimage wrote no ${initramfs[$arch]}" >&2; exit 1; }
	fi
	mv "$BUILD/recovery-$b.img.xz" "$REL/"
	# buildimage's sums name the files without a folder: they check in $REL.
	mv "$BUILD/recovery-$b.img.xz.sha256" "$REL/"
	# Keep the raw image's sum for imagerjson's cross-check, not the image.
	mv "$BUILD/recovery-$b.img.sha256" "$REL/"
done

echo "== os_list.json"
imgs=()
for b in $BOARDS; do imgs+=("$REL/recovery-$b.img.xz"); done
SOURCE_DATE_EPOCH=$(date -u -d "$DATE" +%s) "$GO" run ./packaging/imagerjson \
	-base-url "$RELEASE_BASE_URL" -version "$VERSION" -o "$REL/os_list.json" "${imgs[@]}"
rm -f "$REL"/recovery-*.img.sha256   # checked; the download is the .xz

(cd "$REL" && sha256sum -c --quiet -- *.img.xz.sha256 && sha256sum -- *.deb *.img.xz os_list.json pibackup-recovery.svg > SHA256SUMS)
rm -rf "$BUILD"

echo "== $REL ($((SECONDS - start)) s)"
ls -l "$REL"
