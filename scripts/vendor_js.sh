#!/usr/bin/env bash
# Re-vendor the CRM's browser libraries from their npm packages at pinned versions (no CDN at run time,
# no Node build on the VM). Run from the repository root: bash scripts/vendor_js.sh
# Each package's tarball is checked against its registry integrity (sha512) before files are copied.
set -euo pipefail
DEST=appliance/web/static/vendor
WORK=$(mktemp -d)
mkdir -p "$DEST"
trap 'rm -rf "$WORK"' EXIT

# name@version  files to copy (relative to the package root)
PACKAGES=(
  "lit-html@3.3.3 lit-html.js LICENSE"
  "uplot@1.6.32 dist/uPlot.esm.js dist/uPlot.min.css LICENSE"
)

for entry in "${PACKAGES[@]}"; do
  read -r spec files <<<"$entry"
  name=${spec%@*}
  (cd "$WORK" && npm pack --silent "$spec" >/dev/null)
  tarball=$(ls "$WORK"/"$name"-*.tgz)
  want=$(npm view "$spec" dist.integrity)
  got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
  [ "$want" = "$got" ] || { echo "$spec: integrity mismatch ($got != $want)" >&2; exit 1; }
  mkdir -p "$WORK/$name" "$DEST/$spec"
  tar xzf "$tarball" -C "$WORK/$name"
  for f in $files; do cp "$WORK/$name/package/$f" "$DEST/$spec/$(basename "$f")"; done
  echo "$spec $want" 
done | tee "$DEST/VERSIONS.txt"
