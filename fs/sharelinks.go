package fs

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/s3drive/s3drive/fs/share"
	"github.com/s3drive/s3drive/s3backend"
)

// Share links: presigned URLs for a file of the mount (s3drive url, and the
// user.s3drive.url attribute). An upload link's name is watched until the
// link expires: a client may fill it at any moment, and a lookup must not
// answer "no such file" from a cache filled before.

// xattrURL reads a download link for the file with the mount's default
// expiry. It is not listed (cp --preserve=xattr would copy it) and not
// writable.
const xattrURL = "user.s3drive.url"

// Link errors, for s3drive url to explain.
var (
	ErrIsFolder    = errors.New("is a folder; links are for files")
	ErrNotUploaded = errors.New("has changes that are not in S3 yet")
	ErrExists      = errors.New("already exists")
)

// LinkRequest asks for a link to the file at Path.
type LinkRequest struct {
	Path string        // in the mount, relative to its root, slash-separated
	TTL  time.Duration // 0: the mount's default (Options.LinkExpiry)
	// Upload asks for a URL that writes a new file at Path; Overwrite
	// allows one that replaces the file there.
	Upload, Overwrite bool
	// Wait: a file with changes not in S3 yet is first uploaded (after its
	// writers close it) rather than refused.
	Wait bool
	// Attachment makes a browser save the file rather than show it.
	Attachment bool
}

// ShareLink returns a presigned URL for req. Errors are ErrIsFolder,
// ErrNotUploaded, ErrExists, os.ErrNotExist (as ENOENT) or the backend's.
func (f *FS) ShareLink(ctx context.Context, req LinkRequest) (string, error) {
	if req.TTL == 0 {
		req.TTL = f.opts.LinkExpiry
	}
	if err := share.CheckExpiry(req.TTL); err != nil {
		return "", err
	}
	key, err := linkKey(req.Path)
	if err != nil {
		return "", err
	}
	dirKey, name := splitKey(key)
	if req.Upload && f.opts.ReadOnly {
		return "", syscall.EROFS
	}
	if file := f.dirtyFile(key); file != nil {
		if req.Upload && !req.Overwrite {
			return "", ErrExists
		}
		if !req.Upload {
			if !req.Wait {
				return "", ErrNotUploaded
			}
			if err := file.waitUploaded(ctx); err != nil {
				return "", err
			}
		}
	}
	res, err := f.resolve(ctx, dirKey, name)
	switch {
	case errors.Is(err, syscall.ENOENT) && req.Upload:
	case err != nil:
		return "", err
	case res.kind == kindDir:
		return "", ErrIsFolder
	case res.kind == kindSymlink:
		return "", errors.New("is a symbolic link; ask for a link to its target")
	case req.Upload && !req.Overwrite:
		return "", ErrExists
	}
	if req.Upload {
		if errno := f.checkName(dirKey, name, false); errno != 0 {
			return "", errno
		}
		url, err := f.be.Presign(ctx, key, s3backend.Link{Upload: true, TTL: req.TTL})
		if err == nil {
			f.await(key, req.TTL)
		}
		return url, err
	}
	return f.downloadLink(ctx, key, req.TTL, req.Attachment)
}

// linkKey is the key of a path in the mount, refusing one that leaves it.
func linkKey(p string) (string, error) {
	clean := path.Clean("/" + p)[1:]
	if clean == "" || clean != strings.Trim(p, "/") {
		return "", fmt.Errorf("%q is not a file's path in the mount", p)
	}
	return clean, nil
}

func (f *FS) downloadLink(ctx context.Context, key string, ttl time.Duration, attachment bool) (string, error) {
	_, name := splitKey(key)
	return f.be.Presign(ctx, key, s3backend.Link{TTL: ttl,
		ContentType: share.ContentType(name), ContentDisposition: share.Disposition(name, attachment)})
}

// dirtyFile is the file at key with changes not in S3 yet, or nil.
func (f *FS) dirtyFile(key string) *File {
	for _, file := range f.dirtyFiles() {
		if k, ok := file.key(); ok && k == key {
			return file
		}
	}
	return nil
}

// waitUploaded returns once S3 holds the file as its writers closed it:
// a file still open for writing is waited for (uploading it now would
// show a state no writer closed), one whose upload failed is retried.
func (file *File) waitUploaded(ctx context.Context) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		file.mu.Lock()
		dirty := file.dirty
		file.mu.Unlock()
		if !dirty {
			return nil
		}
		if !file.writing() {
			if errno := file.sync(ctx); errno != 0 {
				return errno
			}
			continue
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-tick.C:
		}
	}
}

// linkAttr answers getfattr -n user.s3drive.url.
func (file *File) linkAttr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	file.mu.Lock()
	dirty := file.dirty
	file.mu.Unlock()
	if dirty {
		if file.writing() {
			return 0, syscall.EBUSY // a link now would show a half-written file
		}
		if errno := file.sync(ctx); errno != 0 {
			return 0, errno
		}
	}
	key, ok := file.key()
	if !ok {
		return 0, syscall.ENOENT
	}
	url, err := file.fsys.downloadLink(ctx, key, file.fsys.opts.LinkExpiry, false)
	if err != nil {
		return 0, toErrno(file.fsys.log, "presign", key, err)
	}
	return copyOut(dest, []byte(url))
}

// await watches key, which an upload link may fill until ttl passes.
func (f *FS) await(key string, ttl time.Duration) {
	until := time.Now().Add(ttl)
	f.awaitMu.Lock()
	if f.awaited == nil {
		f.awaited = map[string]time.Time{}
	}
	f.awaited[key] = until
	f.awaitMu.Unlock()
	dirKey, name := splitKey(key)
	f.cache.ClearNegative(key)
	f.cache.DropListing(dirKey)
	f.forgetEntry(dirKey, name)
}

// awaiting reports whether an upload link may still fill key.
func (f *FS) awaiting(key string) bool {
	f.awaitMu.Lock()
	defer f.awaitMu.Unlock()
	until, ok := f.awaited[key]
	if ok && time.Now().After(until) {
		delete(f.awaited, key)
		ok = false
	}
	return ok
}

// awaitingIn reports whether an upload link may still fill a name in the
// folder dirKey: its listing is then asked for again at each readdir.
func (f *FS) awaitingIn(dirKey string) bool {
	f.awaitMu.Lock()
	defer f.awaitMu.Unlock()
	now := time.Now()
	found := false
	for key, until := range f.awaited {
		switch {
		case now.After(until):
			delete(f.awaited, key)
		case strings.HasPrefix(key, dirKey) && !strings.Contains(key[len(dirKey):], "/"):
			found = true
		}
	}
	return found
}

// arrived ends the watch of key: the upload came.
func (f *FS) arrived(key string) {
	f.awaitMu.Lock()
	delete(f.awaited, key)
	f.awaitMu.Unlock()
}

// forgetEntry drops the kernel's entry for name in the folder dirKey (a
// "no such file" it may hold), if the kernel knows that folder.
func (f *FS) forgetEntry(dirKey, name string) {
	dir := f.rootInode()
	for _, seg := range strings.Split(strings.TrimSuffix(dirKey, "/"), "/") {
		if seg == "" {
			continue
		}
		if dir = dir.GetChild(seg); dir == nil {
			return
		}
	}
	dir.NotifyEntry(name) // ENOENT when the kernel holds none: nothing to drop
}
