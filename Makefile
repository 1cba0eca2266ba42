# The two commands a newcomer needs (see README.md):
#   make quickstart   runs the quickstart on the embedded default (no cloud, no secrets)
#   make test         runs every test, against a real Vault dev server it starts itself
.PHONY: test quickstart lint vault bench keyprov

test: ## every test of every module, with the race detector, after the linters
	./scripts/test.sh

quickstart: ## the main job on the embedded default
	go run ./examples/quickstart

lint: ## gofmt, go vet and staticcheck over every module
	./scripts/lint.sh

# The backends keyprov can link; make keyprov BACKENDS="vault" builds it
# with only those named, the others left out by their keyprov_no_<name>
# tag (README.md, "Smaller builds").
ALL_BACKENDS := awssm onepassword vault
BACKENDS ?= $(ALL_BACKENDS)
comma := ,
empty :=
space := $(empty) $(empty)
KEYPROV_TAGS = $(subst $(space),$(comma),$(strip $(foreach b,$(ALL_BACKENDS),$(if $(filter $(b),$(BACKENDS)),,keyprov_no_$(b)))))

keyprov: ## build cmd/keyprov/keyprov with only the BACKENDS named (default: all)
	$(if $(filter-out $(ALL_BACKENDS),$(BACKENDS)),$(error BACKENDS: unknown $(filter-out $(ALL_BACKENDS),$(BACKENDS)); choose among $(ALL_BACKENDS)))
	cd cmd/keyprov && go build -tags '$(KEYPROV_TAGS)' -o keyprov .

vault: ## build (once, then cached) the Vault server the tests run
	./scripts/vault-bin.sh

bench: ## the benchmarks behind BENCHMARKS.md
	cd bench && go test -run '^$$' -bench . -benchmem ./...
	go test -run '^$$' -bench . -benchmem ./onepassword/
