# Convenience targets; each is one plain go command.
.PHONY: build test demo vet bench bench-folders

build:
	go build -buildvcs=auto -o bin/s3drive ./cmd/s3drive

test:
	go test ./...

demo:
	go run ./cmd/s3drive demo $(HOME)/Drive

vet:
	gofmt -l . && go vet ./...

# Runs versitygw, mounts s3drive (durable and --write-back) and a raw SDK
# client side by side (root): on loopback, then the tree workloads again
# 5 ms from the server each way, as over a network.
bench:
	go run ./cmd/bench
	go run ./cmd/bench -latency 5ms -size 256 -runs 1 -rss-size 0 -tree $$(go env GOROOT)/src/crypto/internal/fips140

# Folders of 1,000 to 100,000 objects: ls -l and ls -f, cold and warm,
# requests and peak RSS, beside s3fs when installed (root; ~10 minutes).
bench-folders:
	go run ./cmd/bench -folders 1000,10000,100000 -size 0 -rss-size 0 -tree "" -tools s3drive,s3fs
