#!/usr/bin/env bash
# The whole test suite: linters, then every module's tests with the race
# detector, with a real Vault dev server on loopback for the vault package.
# It builds Vault the first time (see scripts/vault-bin.sh), starts the dev
# server, and stops it however the tests end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

./scripts/lint.sh

# The OpenAI Node SDK that cmd/keyprov's proxy tests drive (cmd/keyprov is a
# module of its own, tested in the loop below), from its lockfile;
# those tests fail instead of skipping when run from here.
(cd test/node && npm ci --no-audit --no-fund)
export KEYPROVIDER_REQUIRE_NODE=1

KEYPROVIDER_VAULT_BIN=$(./scripts/vault-bin.sh)
export KEYPROVIDER_VAULT_BIN
# Tests that need Vault fail instead of skipping when run from here.
export KEYPROVIDER_REQUIRE_VAULT=1

workdir=$(mktemp -d)
vault_pid=
cleanup() {
  if [ -n "$vault_pid" ]; then kill "$vault_pid" 2>/dev/null || true; wait "$vault_pid" 2>/dev/null || true; fi
  rm -rf "$workdir"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18200)
export VAULT_ADDR="http://127.0.0.1:$port"
export VAULT_TOKEN="keyprovider-dev-root"
"$KEYPROVIDER_VAULT_BIN" server -dev -dev-no-store-token -dev-root-token-id="$VAULT_TOKEN" \
  -dev-listen-address="127.0.0.1:$port" >"$workdir/vault.log" 2>&1 &
vault_pid=$!
for _ in $(seq 1 100); do
  if curl -fsS "$VAULT_ADDR/v1/sys/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$vault_pid" 2>/dev/null; then cat "$workdir/vault.log" >&2; echo "vault dev server exited" >&2; exit 1; fi
  sleep 0.2
done
curl -fsS "$VAULT_ADDR/v1/sys/health" >/dev/null || { cat "$workdir/vault.log" >&2; echo "vault dev server did not come up" >&2; exit 1; }
echo "vault dev server at $VAULT_ADDR (pid $vault_pid)"

# The real non-Go clients the emulators are proved against (the AWS CLI,
# boto3, the JS Connect SDK from its lockfile): their tests fail instead of
# skipping when run from here.
npm ci --prefix test/node-connect --no-audit --no-fund
export KEYPROVIDER_REQUIRE_CLIENTS=1

status=0
go test -race -count=1 ./... || status=$?
for mod in cmd/keyprov bench examples/tessera-openai internal/metrics/sdktest; do
  if [ -f "$mod/go.mod" ]; then
    (cd "$mod" && go test -race -count=1 ./...) || status=$?
  fi
done
exit $status
