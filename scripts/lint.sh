#!/usr/bin/env bash
# gofmt, go vet and staticcheck over the library and its side modules.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change:" >&2; echo "$unformatted" >&2; exit 1; fi

for mod in . bench examples/tessera-openai internal/metrics/sdktest; do
  [ -f "$mod/go.mod" ] || continue
  (cd "$mod" && go vet ./... && go run "$STATICCHECK" ./...)
done
echo "lint: ok"
