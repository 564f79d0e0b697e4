#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Builds the Debian package from this tree as it is (committed or not): copies it, without
# .git, build directories and benchmark results, to a temporary directory, puts
# packaging/debian/ there as debian/, runs `dpkg-buildpackage -us -uc -b`, then lintian (which
# must report no error), and leaves fastproxy_VERSION_ARCH.deb, .buildinfo and .changes in
# OUTDIR (default build-deb/). As root it first installs what is missing (install-deps.sh
# build deb). Usage: packaging/build-deb.sh [OUTDIR]
set -eu
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-build-deb}")
if [ "$(id -u)" = 0 ]; then
    ./packaging/install-deps.sh build deb
fi
version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
work=$(mktemp -d /tmp/fastproxy-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
src=$work/fastproxy-$version
mkdir "$src"
tar --exclude=./.git --exclude='./build*' --exclude=./bench/results --exclude=./debian \
    -cf - . | tar -xf - -C "$src"
cp -a packaging/debian "$src/debian"
(cd "$src" && dpkg-buildpackage -us -uc -b)
changes=$(ls "$work"/fastproxy_"$version"_*.changes)
echo "=== lintian $(basename "$changes")"
lintian --fail-on error --info --display-level '>=warning' "$changes"
mkdir -p "$out"
cp "$work"/*.deb "$work"/*.buildinfo "$changes" "$out"/
ls -l "$out"/*.deb
