package s3backend

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Memory is an in-memory Backend for unit tests. It follows S3's listing
// rules (lexical order, delimiter roll-up, paging) and counts calls the way
// S3 counts requests.
type Memory struct {
	mu      sync.Mutex
	objects map[string]memObject
	count   counters
	fail    atomic.Pointer[func(op, key string) error]
	// PageSize caps keys per List page (default 1000, as S3).
	PageSize int
	// Parts is the multipart part size (default 16 MiB).
	Parts int64
	// open counts multipart uploads started and not yet completed or
	// aborted, so tests can check none is left behind.
	open    atomic.Int64
	offline atomic.Bool
	served  atomic.Int64 // bytes GETs returned
}

type memObject struct {
	data     []byte
	etag     string
	modified time.Time
	opts     PutOptions
}

var _ Backend = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{objects: map[string]memObject{}} }

func (m *Memory) Counters() map[string]int64 { return m.count.snapshot() }

// SetFail installs fault injection for tests: fail is consulted before every
// request, and a non-nil error fails that request. nil removes it.
func (m *Memory) SetFail(fail func(op, key string) error) {
	if fail == nil {
		m.fail.Store(nil)
		return
	}
	m.fail.Store(&fail)
}

func (m *Memory) begin(op, key string) error {
	m.count.add(op)
	if fail := m.fail.Load(); fail != nil {
		return (*fail)(op, key)
	}
	return nil
}

func (o memObject) info(key string) ObjectInfo {
	return ObjectInfo{Key: key, Size: int64(len(o.data)), ETag: o.etag, LastModified: o.modified,
		ContentType: o.opts.ContentType, StorageClass: "STANDARD", Metadata: maps.Clone(o.opts.Metadata)}
}

func (m *Memory) Head(ctx context.Context, key string) (ObjectInfo, error) {
	if err := m.begin(OpHead, key); err != nil {
		return ObjectInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[key]
	if !ok {
		return ObjectInfo{}, fmt.Errorf("HEAD %q: %w", key, ErrNotFound)
	}
	if o.opts.Metadata == nil {
		o.opts.Metadata = map[string]string{}
	}
	return o.info(key), nil
}

func (m *Memory) List(ctx context.Context, prefix, delimiter, token string, maxKeys int) (ListPage, error) {
	if err := m.begin(OpList, prefix); err != nil {
		return ListPage{}, err
	}
	if maxKeys <= 0 || maxKeys > 1000 {
		maxKeys = 1000
	}
	if m.PageSize > 0 && maxKeys > m.PageSize {
		maxKeys = m.PageSize
	}
	m.mu.Lock()
	keys := make([]string, 0, len(m.objects))
	for k := range m.objects {
		if strings.HasPrefix(k, prefix) && (token == "" || k > token) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var page ListPage
	seen := map[string]bool{}
	n := 0
	for _, k := range keys {
		if n == maxKeys {
			page.NextToken = lastOf(page)
			break
		}
		if delimiter != "" {
			if i := strings.Index(k[len(prefix):], delimiter); i >= 0 {
				p := k[:len(prefix)+i+len(delimiter)]
				if !seen[p] {
					seen[p] = true
					page.Prefixes = append(page.Prefixes, p)
					n++
				}
				continue
			}
		}
		o := m.objects[k]
		info := o.info(k)
		info.Metadata, info.ContentType = nil, ""
		page.Objects = append(page.Objects, info)
		n++
	}
	m.mu.Unlock()
	return page, nil
}

// lastOf returns the continuation token for a full page: the greatest key
// it holds, or past every key under its last common prefix.
func lastOf(p ListPage) string {
	last := ""
	if n := len(p.Objects); n > 0 {
		last = p.Objects[n-1].Key
	}
	if n := len(p.Prefixes); n > 0 && p.Prefixes[n-1] > last {
		// UTF-8 keys never hold 0xff, so this sorts after every key under it.
		last = p.Prefixes[n-1] + "\xff"
	}
	return last
}

func (m *Memory) Get(ctx context.Context, key string, off, length int64, ifMatch string) (io.ReadCloser, error) {
	if err := m.begin(OpGet, key); err != nil {
		return nil, err
	}
	m.mu.Lock()
	o, ok := m.objects[key]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("GET %q: %w", key, ErrNotFound)
	}
	if ifMatch != "" && ifMatch != o.etag {
		return nil, fmt.Errorf("GET %q: %w", key, ErrPrecondition)
	}
	size := int64(len(o.data))
	off = min(off, size)
	end := size
	if length >= 0 {
		end = min(off+length, size)
	}
	m.served.Add(end - off)
	return io.NopCloser(bytes.NewReader(o.data[off:end])), nil
}

func (m *Memory) Upload(ctx context.Context, key string, r io.ReaderAt, size int64, opts PutOptions) (ObjectInfo, error) {
	if err := m.begin(OpPut, key); err != nil {
		return ObjectInfo{}, err
	}
	data := make([]byte, size)
	if _, err := r.ReadAt(data, 0); err != nil && err != io.EOF {
		return ObjectInfo{}, fmt.Errorf("PUT %q: reading body: %w", key, err)
	}
	return m.storeIf(key, data, opts, opts.Cond)
}

func (m *Memory) store(key string, data []byte, opts PutOptions) ObjectInfo {
	info, _ := m.storeIf(key, data, opts, Conditions{})
	return info
}

// storeIf stores data as key if the key's state meets cond, checked and
// stored under one lock as S3 does.
func (m *Memory) storeIf(key string, data []byte, opts PutOptions, cond Conditions) (ObjectInfo, error) {
	sum := md5.Sum(data)
	o := memObject{data: data, etag: hex.EncodeToString(sum[:]), modified: time.Now().UTC().Truncate(time.Millisecond),
		opts: PutOptions{ContentType: opts.ContentType, Metadata: maps.Clone(opts.Metadata)}}
	m.mu.Lock()
	defer m.mu.Unlock()
	old, exists := m.objects[key]
	if (cond.IfNoneMatch && exists) || (cond.IfMatch != "" && (!exists || old.etag != cond.IfMatch)) {
		return ObjectInfo{}, fmt.Errorf("PUT %q: %w", key, ErrPrecondition)
	}
	m.objects[key] = o
	return o.info(key), nil
}

func (m *Memory) Copy(ctx context.Context, src, dst string, size int64, opts *PutOptions, cond Conditions) (ObjectInfo, error) {
	if err := m.begin(OpCopy, src); err != nil {
		return ObjectInfo{}, err
	}
	m.mu.Lock()
	o, ok := m.objects[src]
	m.mu.Unlock()
	if !ok {
		return ObjectInfo{}, fmt.Errorf("COPY %q: %w", src, ErrNotFound)
	}
	if cond.SourceIfMatch != "" && o.etag != cond.SourceIfMatch {
		return ObjectInfo{}, fmt.Errorf("COPY %q: source: %w", src, ErrPrecondition)
	}
	if opts == nil {
		opts = &o.opts
	}
	return m.storeIf(dst, o.data, *opts, cond)
}

func (m *Memory) Delete(ctx context.Context, keys ...string) error {
	_, err := m.Remove(ctx, anyVersion(keys))
	return err
}

func (m *Memory) Remove(ctx context.Context, removals []Removal) ([]string, error) {
	op := OpDelete
	if len(removals) > 1 {
		op = OpDeleteBatch
	}
	var kept []string
	for batch := range slices.Chunk(removals, deleteBatch) {
		if err := m.begin(op, batch[0].Key); err != nil {
			return kept, err
		}
		m.mu.Lock()
		for _, r := range batch {
			if o, ok := m.objects[r.Key]; ok && r.ETag != "" && o.etag != r.ETag {
				kept = append(kept, r.Key)
				continue
			}
			delete(m.objects, r.Key)
		}
		m.mu.Unlock()
	}
	return kept, nil
}

// MaxKeyLen is S3's.
func (m *Memory) MaxKeyLen() int { return MaxKey }

// SetOffline makes Offline report down (a fake outage; requests still
// fail only as SetFail says).
func (m *Memory) SetOffline(down bool) { m.offline.Store(down) }

func (m *Memory) Offline() bool { return m.offline.Load() }

// AbortUpload has nothing to do: memory uploads end with their process.
func (m *Memory) AbortUpload(ctx context.Context, key, id string) error {
	return m.begin(OpAbortMultipart, key)
}

func (m *Memory) Presign(ctx context.Context, key string, link Link) (string, error) {
	method := "GET"
	if link.Upload {
		method = "PUT"
	}
	return "memory://" + key + "?method=" + method + "&expires=" + time.Now().Add(link.TTL).UTC().Format(time.RFC3339), nil
}

// BytesServed is how many bytes GETs have returned.
func (m *Memory) BytesServed() int64 { return m.served.Load() }

// PutObject stores an object directly, as another S3 client would.
func (m *Memory) PutObject(key string, data []byte, metadata map[string]string) ObjectInfo {
	return m.store(key, data, PutOptions{Metadata: metadata})
}

// Keys returns every stored key in order.
func (m *Memory) Keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]string, 0, len(m.objects))
	for k := range m.objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// OpenMultiparts reports multipart uploads started and neither completed
// nor aborted.
func (m *Memory) OpenMultiparts() int64 { return m.open.Load() }

func (m *Memory) StartMultipart(ctx context.Context, key string, opts PutOptions) (Multipart, error) {
	if err := m.begin(OpCreateMultipart, key); err != nil {
		return nil, err
	}
	m.open.Add(1)
	return &memMultipart{m: m, key: key, opts: opts, partSize: m.PartSize(), parts: map[int32][]byte{}}, nil
}

type memMultipart struct {
	m        *Memory
	key      string
	opts     PutOptions
	partSize int64

	mu    sync.Mutex // protects parts and ended
	parts map[int32][]byte
	ended bool
}

func (m *Memory) PartSize() int64 {
	if m.Parts <= 0 {
		return 16 << 20
	}
	return m.Parts
}

func (m *Memory) PartsInFlight() int { return 4 }

func (u *memMultipart) Part(ctx context.Context, num int32, r io.ReaderAt, off, n int64) error {
	if err := u.m.begin(OpUploadPart, u.key); err != nil {
		return err
	}
	data := make([]byte, n)
	if _, err := r.ReadAt(data, off); err != nil && err != io.EOF {
		return fmt.Errorf("upload part %d of %q: %w", num, u.key, err)
	}
	u.mu.Lock()
	u.parts[num] = data
	u.mu.Unlock()
	return nil
}

// Complete checks what S3 checks: parts numbered from 1 without gaps, all
// but the last exactly PartSize.
func (u *memMultipart) Complete(ctx context.Context, cond Conditions) (ObjectInfo, error) {
	if err := u.m.begin(OpCompleteMultipart, u.key); err != nil {
		u.Abort()
		return ObjectInfo{}, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	var body []byte
	for i := int32(1); i <= int32(len(u.parts)); i++ {
		p, ok := u.parts[i]
		if !ok || (i < int32(len(u.parts)) && int64(len(p)) != u.partSize) {
			return ObjectInfo{}, fmt.Errorf("complete %q: part %d missing or mis-sized", u.key, i)
		}
		body = append(body, p...)
	}
	info, err := u.m.storeIf(u.key, body, u.opts, cond)
	if err == nil {
		u.endLocked()
	}
	return info, err
}

func (u *memMultipart) Abort() {
	u.m.count.add(OpAbortMultipart)
	u.mu.Lock()
	u.endLocked()
	u.mu.Unlock()
}

func (u *memMultipart) endLocked() {
	if !u.ended {
		u.ended = true
		u.m.open.Add(-1)
	}
}
