// Module bench holds the benchmarks behind BENCHMARKS.md: keyprovider's hot
// paths beside the libraries users would otherwise pick. It is a module of
// its own so that those peers never enter the library's dependencies.
module github.com/keyprovider/keyprovider/bench

go 1.26.0

replace github.com/keyprovider/keyprovider => ../

require (
	github.com/aws/aws-sdk-go-v2 v1.48.0
	github.com/keyprovider/keyprovider v0.0.0-00010101000000-000000000000
	go.opentelemetry.io/otel/sdk/metric v1.37.0
	golang.org/x/oauth2 v0.38.0
)

require (
	github.com/aws/smithy-go v1.28.9 // indirect
	github.com/fsnotify/fsnotify v1.10.1 // indirect
	github.com/go-logr/logr v1.4.3 // indirect
	github.com/go-logr/stdr v1.2.2 // indirect
	github.com/google/uuid v1.6.0 // indirect
	go.opentelemetry.io/auto/sdk v1.1.0 // indirect
	go.opentelemetry.io/otel v1.37.0 // indirect
	go.opentelemetry.io/otel/metric v1.37.0 // indirect
	go.opentelemetry.io/otel/sdk v1.37.0 // indirect
	go.opentelemetry.io/otel/trace v1.37.0 // indirect
	golang.org/x/sys v0.40.0 // indirect
)
