package s3backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Conditional writes on servers that ignore them. AWS, MinIO and Ceph
// refuse a write whose If-Match or If-None-Match does not hold; some
// servers take the write anyway (versitygw 1.8 checks PutObject's and
// CompleteMultipartUpload's, not CopyObject's). ProbeConditions finds out
// once per mount; a write whose condition the server would ignore is
// checked by a HEAD first: a check with a window between the HEAD and the
// write, so racy, but no longer blind.

// ConditionSupport is what ProbeConditions found.
type ConditionSupport struct {
	Put  bool `json:"put"`  // PutObject (and CompleteMultipartUpload) honour conditions
	Copy bool `json:"copy"` // CopyObject honours them on its destination
}

// ProbeConditions writes a probe object under the mount's prefix twice
// with If-None-Match: *, copies it twice onto a second name the same way,
// and removes both: the second write and the second copy must be refused.
// Five requests. (Not a copy onto itself: some servers fail at those.)
func (b *S3) ProbeConditions(ctx context.Context) (ConditionSupport, error) {
	suffix := make([]byte, 6)
	rand.Read(suffix)
	key := ".s3drive-probe-" + hex.EncodeToString(suffix)
	copied := key + "-copy"
	free := Conditions{IfNoneMatch: true}
	body := strings.NewReader("s3drive checks whether this server honours conditional writes; it removes this at once\n")
	if _, err := b.Upload(ctx, key, body, body.Size(), PutOptions{ContentType: "text/plain", Cond: free}); err != nil {
		return ConditionSupport{}, err
	}
	defer b.Delete(context.WithoutCancel(ctx), key, copied)
	var sup ConditionSupport
	_, err := b.Upload(ctx, key, body, body.Size(), PutOptions{ContentType: "text/plain", Cond: free})
	switch {
	case errors.Is(err, ErrPrecondition):
		sup.Put = true
	case err != nil:
		return sup, err
	}
	for range 2 {
		_, err = b.Copy(ctx, key, copied, body.Size(), nil, free)
		switch {
		case errors.Is(err, ErrPrecondition):
			sup.Copy = true
		case err != nil:
			return sup, err
		}
	}
	return sup, nil
}

// UseConditions sets what the server honours; the rest is checked by HEAD.
func (b *S3) UseConditions(sup ConditionSupport) {
	b.putIgnoresConditions.Store(!sup.Put)
	b.copyIgnoresConditions.Store(!sup.Copy)
}

// emulate checks cond with a HEAD of key when the server would ignore it.
func (b *S3) emulate(ctx context.Context, key string, cond Conditions, ignored bool) error {
	if !ignored || !cond.Any() {
		return nil
	}
	info, err := b.Head(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound):
		if cond.IfMatch != "" {
			return fmt.Errorf("%q is gone: %w", key, ErrPrecondition)
		}
		return nil
	case err != nil:
		return err
	case cond.IfNoneMatch || info.ETag != cond.IfMatch:
		return fmt.Errorf("%q holds another version: %w", key, ErrPrecondition)
	}
	return nil
}
