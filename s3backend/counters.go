package s3backend

import (
	"maps"
	"sync"
)

// Request kinds, named as the S3 API names them.
const (
	OpHead              = "HeadObject"
	OpList              = "ListObjectsV2"
	OpGet               = "GetObject"
	OpPut               = "PutObject"
	OpCopy              = "CopyObject"
	OpDelete            = "DeleteObject"
	OpDeleteBatch       = "DeleteObjects"
	OpCreateMultipart   = "CreateMultipartUpload"
	OpUploadPart        = "UploadPart"
	OpUploadPartCopy    = "UploadPartCopy"
	OpCompleteMultipart = "CompleteMultipartUpload"
	OpAbortMultipart    = "AbortMultipartUpload"
	OpOther             = "Other"
)

// counters is a concurrency-safe tally of requests by kind.
type counters struct {
	mu     sync.Mutex
	n      map[string]int64
	errors map[string]int64 // requests that failed (see failed), by kind
}

func (c *counters) failed(op string) {
	c.mu.Lock()
	if c.errors == nil {
		c.errors = make(map[string]int64)
	}
	c.errors[op]++
	c.mu.Unlock()
}

func (c *counters) errorsSnapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.errors)
}

func (c *counters) add(op string) {
	c.mu.Lock()
	if c.n == nil {
		c.n = make(map[string]int64)
	}
	c.n[op]++
	c.mu.Unlock()
}

func (c *counters) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}
