#!/usr/bin/env bash
# Builds the Vault server from the Go module proxy, through the tools module in
# tools/vault, and prints the path of the binary. The binary is cached outside
# the work tree (it is ~500 MB and takes minutes to build), keyed by a hash of
# the tools module's go.mod and go.sum, so a clean clone on the same machine
# reuses it and a change of Vault version rebuilds it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${KEYPROVIDER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keyprovider}
sum=$(cat "$root/tools/vault/go.mod" "$root/tools/vault/go.sum" | sha256sum | cut -c1-16)
bin="$cache/vault-$sum"
if [ ! -x "$bin" ]; then
  mkdir -p "$cache"
  echo "building Vault from the Go module proxy into $bin (first time only; takes several minutes)" >&2
  (cd "$root/tools/vault" && go build -trimpath -o "$bin.tmp.$$" github.com/hashicorp/vault)
  mv "$bin.tmp.$$" "$bin"
fi
echo "$bin"
