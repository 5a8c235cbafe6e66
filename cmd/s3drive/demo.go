package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
	"github.com/spf13/cobra"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

const demoBucket = "demo"

func demoCmd() *cobra.Command {
	var (
		flags   mountFlags
		dataDir string
		listen  string
	)
	cmd := &cobra.Command{
		Use:   "demo [MOUNTPOINT]",
		Short: "Try s3drive with no cloud account: an embedded local S3 endpoint, mounted at MOUNTPOINT (default ~/Drive)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{fmt.Errorf("at most one mountpoint\nusage: %s", cmd.UseLine())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			home, _ := os.UserHomeDir()
			mp := filepath.Join(home, "Drive")
			if len(args) == 1 {
				mp = args[0]
			}
			if err := os.MkdirAll(mp, 0o755); err != nil {
				return err
			}
			endpoint, stop, err := startDemoS3(dataDir, listen)
			if err != nil {
				return err
			}
			defer stop()
			fmt.Printf("s3drive: demo S3 endpoint %s (bucket %q, data in %s)\n", endpoint, demoBucket, dataDir)
			flags.endpoint = endpoint
			flags.stateKey = "demo\x00" + dataDir
			flags.accessKey, flags.secretKey = "demo", "demodemo"
			return runMount(context.Background(), flags, demoBucket, "", mp, func() {
				fmt.Printf("s3drive: your drive is ready: open %s; press Ctrl-C to unmount\n", mp)
			})
		},
	}
	flags.register(cmd)
	cmd.Flags().StringVar(&dataDir, "data-dir", defaultDemoDataDir(), "where the demo endpoint keeps its objects")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "address of the demo S3 endpoint")
	return cmd
}

func defaultDemoDataDir() string {
	if d, err := os.UserHomeDir(); err == nil {
		return filepath.Join(d, ".local", "share", "s3drive-demo")
	}
	return filepath.Join(os.TempDir(), "s3drive-demo")
}

// startDemoS3 serves an S3 API on loopback from a bbolt file in dataDir
// (gofakes3). It is for trying s3drive, not for production data: it keeps
// each object in memory while serving it.
func startDemoS3(dataDir, listen string) (endpoint string, stop func(), err error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", nil, err
	}
	// Opened here with a timeout: s3bolt's own NewFile waits forever for a
	// store another demo has open.
	path := filepath.Join(dataDir, "objects.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return "", nil, fmt.Errorf("%s is in use by another s3drive demo (use --data-dir for a second one)", path)
	}
	if err != nil {
		return "", nil, fmt.Errorf("opening demo store %s: %w", path, err)
	}
	store := boltStore{s3bolt.New(db)}
	if err := store.CreateBucket(demoBucket); err != nil && !gofakes3.HasErrorCode(err, gofakes3.ErrBucketAlreadyExists) {
		db.Close()
		return "", nil, fmt.Errorf("creating demo bucket: %w", err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return "", nil, fmt.Errorf("demo endpoint: %w", err)
	}
	srv := &http.Server{Handler: refuseExpiredLinks(gofakes3.New(store, gofakes3.WithAutoBucket(true)).Server())}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close(); db.Close() }, nil
}

// refuseExpiredLinks answers a presigned URL past its expiry with 403, as
// S3 does: gofakes3 checks no signatures, and a link tried in the demo
// should end when s3drive url said it would.
func refuseExpiredLinks(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if date, expires := q.Get("X-Amz-Date"), q.Get("X-Amz-Expires"); date != "" && expires != "" {
			signed, err := time.Parse("20060102T150405Z", date)
			secs, err2 := strconv.Atoi(expires)
			if err != nil || err2 != nil || time.Now().After(signed.Add(time.Duration(secs)*time.Second)) {
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>`)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// boltStore mends s3bolt's CopyObject, which reads the source's hash out of
// the database's memory map after writing the copy: when that write grows
// the file, bbolt maps it anew and the read faults (the demo endpoint
// crashed on a move). This copy takes what it needs before it writes.
type boltStore struct{ *s3bolt.Backend }

func (b boltStore) CopyObject(srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	obj, err := b.GetObject(srcBucket, srcKey, nil)
	if err != nil {
		return gofakes3.CopyObjectResult{}, err
	}
	data, err := io.ReadAll(obj.Contents)
	obj.Contents.Close()
	if err != nil {
		return gofakes3.CopyObjectResult{}, err
	}
	if _, err := b.PutObject(dstBucket, dstKey, meta, bytes.NewReader(data), int64(len(data)), nil); err != nil {
		return gofakes3.CopyObjectResult{}, err
	}
	sum := md5.Sum(data)
	return gofakes3.CopyObjectResult{ETag: `"` + hex.EncodeToString(sum[:]) + `"`,
		LastModified: gofakes3.NewContentTime(time.Now())}, nil
}
