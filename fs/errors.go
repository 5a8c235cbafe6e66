package fs

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"syscall"

	"github.com/s3drive/s3drive/s3backend"
)

// toErrno is the one place errors become errnos. Errors it cannot name are
// logged and become EIO.
func toErrno(log *slog.Logger, op, key string, err error) syscall.Errno {
	var errno syscall.Errno
	var netErr *net.OpError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, s3backend.ErrNotFound):
		return syscall.ENOENT
	case errors.Is(err, s3backend.ErrAccessDenied):
		log.Warn("S3 denied access", "op", op, "key", key, "err", err)
		return syscall.EACCES
	case errors.Is(err, s3backend.ErrPrecondition):
		log.Warn("object changed while being read", "op", op, "key", key)
		return syscall.ESTALE
	case errors.Is(err, s3backend.ErrTimeout):
		log.Error("S3 did not answer in time", "op", op, "key", key, "err", err)
		return syscall.EIO
	case errors.As(err, &netErr):
		// A connection's errno (ECONNRESET…) is not the program's: EIO.
		// (Not net.Error: syscall.Errno itself implements that.)
	case errors.As(err, &errno):
		return errno // a local error, such as ENOSPC while staging
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	}
	log.Error("S3 request failed", "op", op, "key", key, "err", err)
	return syscall.EIO
}
