package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/s3drive/s3drive/cmd/internal/control"
	s3fs "github.com/s3drive/s3drive/fs"
	"github.com/s3drive/s3drive/s3backend"
)

// controller answers the mount's control socket.
type controller struct {
	mountpoint, source string
	since              time.Time
	server             *fuse.Server
	fsys               *s3fs.FS
	be                 *s3backend.S3
	recovered          s3fs.Recovery
	// final receives the result of the last upload after the unmount.
	final chan error
	asked atomic.Bool // an unmount was asked for
}

func (c *controller) handle(ctx context.Context, req control.Request) control.Response {
	switch req.Op {
	case control.OpUnmount:
		return c.unmount()
	case control.OpLink:
		if req.Link == nil {
			return control.Response{Code: exitUsage, Error: "link: no request"}
		}
		url, err := c.fsys.ShareLink(ctx, *req.Link)
		if err != nil {
			return control.Response{Code: exitFailure, Error: explainLink(req.Link, err)}
		}
		return control.Response{URL: url}
	case control.OpStatus:
		return control.Response{Status: &control.Status{Mountpoint: c.mountpoint, Source: c.source, PID: os.Getpid(),
			Since: c.since, Status: c.fsys.Status(), Recovered: c.recovered,
			Requests: c.be.Counters(), Errors: c.be.Errors()}}
	}
	return control.Response{Code: exitFailure, Error: fmt.Sprintf("unknown request %q", req.Op)}
}

func (c *controller) unmount() control.Response {
	if !c.asked.CompareAndSwap(false, true) {
		return control.Response{Code: exitFailure, Error: "already unmounting"}
	}
	if err := c.server.Unmount(); err != nil {
		c.asked.Store(false)
		return control.Response{Code: exitFailure, Error: fmt.Sprintf("unmounting %s: %v", c.mountpoint, err)}
	}
	if err := <-c.final; err != nil {
		return control.Response{Code: exitNotFlush, Error: err.Error()}
	}
	return control.Response{}
}

// explainLink turns a link's failure into one line that says what to do.
func explainLink(req *s3fs.LinkRequest, err error) string {
	p := req.Path
	switch {
	case errors.Is(err, s3fs.ErrNotUploaded):
		return fmt.Sprintf("%s %v (it is being written, or its upload waits to be retried): add --wait to wait for its upload", p, err)
	case errors.Is(err, s3fs.ErrExists):
		return fmt.Sprintf("%s %v: an upload link makes a new file; add --overwrite to let it replace this one", p, err)
	case errors.Is(err, syscall.ENOENT):
		return fmt.Sprintf("%s: no such file in the drive", p)
	case errors.Is(err, syscall.EROFS):
		return fmt.Sprintf("%s: the drive is mounted read-only: no upload links", p)
	case errors.Is(err, syscall.ENAMETOOLONG), errors.Is(err, syscall.EINVAL):
		return fmt.Sprintf("%s: S3 cannot hold this name (%v)", p, err)
	case errors.Is(err, context.Canceled):
		return fmt.Sprintf("%s: stopped waiting for its upload", p)
	}
	return fmt.Sprintf("%s: %v", p, err)
}
