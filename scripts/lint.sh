#!/usr/bin/env bash
# gofmt, go vet and staticcheck over the library and its side modules.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change:" >&2; echo "$unformatted" >&2; exit 1; fi

for mod in . cmd/keyprov bench examples/tessera-openai internal/metrics/sdktest; do
  [ -f "$mod/go.mod" ] || continue
  (cd "$mod" && go vet ./... && go run "$STATICCHECK" ./...)
done
# The library holds the OpenTelemetry metrics API alone: the SDK and the
# Prometheus exporter belong to cmd/keyprov's module (and sdktest's).
if sdk=$(go list -deps -test ./... | grep -E '^go\.opentelemetry\.io/otel/(sdk|exporters)|prometheus'); then
  echo "the library's module depends on what only cmd/keyprov may:" >&2; echo "$sdk" >&2; exit 1
fi
echo "lint: ok"
