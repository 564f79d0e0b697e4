#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# meson install script: installs $1 as $2 (an absolute path, under DESTDIR if set) unless a
# file is already there, so that an edited configuration is never overwritten.
set -eu
src=$1
dst=${DESTDIR:-}$2
if [ -e "$dst" ]; then
    echo "Keeping the existing $dst (not overwritten; the shipped one is $src)"
    exit 0
fi
mkdir -p "$(dirname "$dst")"
install -m 0644 "$src" "$dst"
echo "Installing $src to $dst"
