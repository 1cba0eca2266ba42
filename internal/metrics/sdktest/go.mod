// Module sdktest checks keyprovider's metrics against the OpenTelemetry SDK
// (a ManualReader): every documented instrument is exported, no attribute
// holds a secret, and the dashboard and alert rules under deploy/ name only
// metrics that exist. It is a module of its own so that the SDK never enters
// the library's dependencies, which hold the metrics API alone.
module github.com/keyprovider/keyprovider/internal/metrics/sdktest

go 1.26.0

replace github.com/keyprovider/keyprovider => ../../..

require (
	github.com/keyprovider/keyprovider v0.0.0-00010101000000-000000000000
	go.opentelemetry.io/otel v1.37.0
	go.opentelemetry.io/otel/sdk/metric v1.37.0
)

require (
	github.com/fsnotify/fsnotify v1.10.1 // indirect
	github.com/go-logr/logr v1.4.3 // indirect
	github.com/go-logr/stdr v1.2.2 // indirect
	github.com/google/uuid v1.6.0 // indirect
	go.opentelemetry.io/auto/sdk v1.1.0 // indirect
	go.opentelemetry.io/otel/metric v1.37.0 // indirect
	go.opentelemetry.io/otel/sdk v1.37.0 // indirect
	go.opentelemetry.io/otel/trace v1.37.0 // indirect
	golang.org/x/sys v0.40.0 // indirect
)
