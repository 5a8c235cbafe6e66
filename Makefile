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

# Runs versitygw, mounts s3drive and a raw SDK client side by side (root).
bench:
	go run ./cmd/bench

# Folders of 1,000 to 100,000 objects: ls -l and ls -f, cold and warm,
# requests and peak RSS, beside s3fs when installed (root; ~10 minutes).
bench-folders:
	go run ./cmd/bench -folders 1000,10000,100000 -size 0 -rss-size 0 -tree "" -tools s3drive,s3fs
