#!/usr/bin/env bash
# Pack a data root (the folder SLIMLIB_DATA points at) into the release asset the book
# workflow downloads: slimlib-data.tar.gz + its .sha256. Usage:
#   bash scripts/pack_data.sh /path/to/data [out_dir]
# then attach both files to the GitHub release "data-v1" (gh release upload data-v1 ...).
set -euo pipefail
root=${1:?usage: pack_data.sh DATA_ROOT [OUT_DIR]}
out=${2:-.}
for d in eurosat_rgb eurosat_ms ucmerced cifar10_train cifar10_test; do
  [ -f "$root/$d/manifest.csv" ] || { echo "pack_data: $root/$d/manifest.csv missing" >&2; exit 1; }
done
mkdir -p "$out"
tar -czf "$out/slimlib-data.tar.gz" -C "$root" --exclude='*.tmp' \
  eurosat_rgb eurosat_ms ucmerced cifar10_train cifar10_test README.md
(cd "$out" && sha256sum slimlib-data.tar.gz > slimlib-data.tar.gz.sha256)
echo "pack_data: wrote $out/slimlib-data.tar.gz ($(du -h "$out/slimlib-data.tar.gz" | cut -f1))"
