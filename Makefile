# Convenience targets; each is one plain go command.
.PHONY: build test demo vet bench

build:
	go build -o bin/s3drive ./cmd/s3drive

test:
	go test ./...

demo:
	go run ./cmd/s3drive demo $(HOME)/Drive

vet:
	gofmt -l . && go vet ./...

# Runs versitygw, mounts s3drive and a raw SDK client side by side (root).
bench:
	go run ./cmd/bench
