# The two commands a newcomer needs (see README.md):
#   make quickstart   runs the quickstart on the embedded default (no cloud, no secrets)
#   make test         runs every test, against a real Vault dev server it starts itself
.PHONY: test quickstart lint vault bench

test: ## every test of every module, with the race detector, after the linters
	./scripts/test.sh

quickstart: ## the main job on the embedded default
	go run ./examples/quickstart

lint: ## gofmt, go vet and staticcheck over every module
	./scripts/lint.sh

vault: ## build (once, then cached) the Vault server the tests run
	./scripts/vault-bin.sh

bench: ## the benchmarks behind BENCHMARKS.md
	cd bench && go test -run '^$$' -bench . -benchmem ./...
	go test -run '^$$' -bench . -benchmem ./onepassword/
