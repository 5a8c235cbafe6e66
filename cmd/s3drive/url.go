package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/s3drive/s3drive/cmd/internal/control"
	s3fs "github.com/s3drive/s3drive/fs"
	"github.com/s3drive/s3drive/fs/share"
)

func urlCmd() *cobra.Command {
	var (
		expires                         time.Duration
		upload, overwrite, wait, attach bool
	)
	cmd := &cobra.Command{
		Use:   "url PATH",
		Short: "Print a temporary link to a file in a running mount, which works without an account (--upload: a link that puts a new file there, for curl -T)",
		Long: `Print a temporary (presigned) link to the file at PATH, a path inside any
running s3drive mount. The mount signs it with its own credentials and
endpoint. Anyone with the link can download the file until it expires; a
browser shows it under its name (--download: saves it).

With --upload, the link instead lets its holder put a new file at PATH
(curl -T FILE 'URL'); the mount shows it as soon as it arrives.

The same download link is the file's extended attribute user.s3drive.url
(getfattr -n user.s3drive.url FILE), with the mount's --link-expiry.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("expires") {
				if err := share.CheckExpiry(expires); err != nil {
					return usageError{fmt.Errorf("--expires: %w", err)}
				}
			}
			if overwrite && !upload {
				return usageError{errors.New("--overwrite goes with --upload")}
			}
			path, err := linkTarget(args[0], upload, overwrite)
			if err != nil {
				return err
			}
			mp, rel, err := control.Containing(path)
			if err != nil {
				return err
			}
			resp, err := control.Call(mp, control.Request{Op: control.OpLink, Link: &s3fs.LinkRequest{
				Path: rel, TTL: expires, Upload: upload, Overwrite: overwrite, Wait: wait, Attachment: attach}})
			if err != nil {
				return fmt.Errorf("asking the mount at %s: %w", mp, err)
			}
			if resp.Error != "" {
				return errors.New(resp.Error)
			}
			fmt.Println(resp.URL)
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&expires, "expires", 0, "how long the link works (e.g. 120s, 24h; at most 168h); default: the mount's --link-expiry")
	f.BoolVar(&upload, "upload", false, "a link that uploads a new file at PATH (HTTP PUT)")
	f.BoolVar(&overwrite, "overwrite", false, "with --upload: the link may replace an existing file")
	f.BoolVar(&wait, "wait", false, "for a file still being written or waiting to be uploaded: wait until S3 has it")
	f.BoolVar(&attach, "download", false, "make browsers save the file rather than show it")
	return cmd
}

// linkTarget checks what the kernel says of path before the mount is
// asked: a download link needs a file, an upload link a folder to put a
// new one in. Symbolic links are followed.
func linkTarget(arg string, upload, overwrite bool) (string, error) {
	abs, err := filepath.Abs(arg)
	if err != nil {
		return "", err
	}
	if !upload {
		path, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return "", fmt.Errorf("%s: no such file", arg)
		}
		st, err := os.Stat(path)
		switch {
		case err != nil:
			return "", err
		case st.IsDir():
			return "", fmt.Errorf("%s is a folder: links are for files (S3 shares objects, not prefixes)", arg)
		case !st.Mode().IsRegular():
			return "", fmt.Errorf("%s is not a regular file", arg)
		}
		return path, nil
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", fmt.Errorf("%s: its folder does not exist", arg)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", fmt.Errorf("%s: %s is not a folder", arg, filepath.Dir(abs))
	}
	path := filepath.Join(dir, filepath.Base(abs))
	if st, err := os.Lstat(path); err == nil {
		switch {
		case st.IsDir():
			return "", fmt.Errorf("%s is a folder: an upload link makes a file", arg)
		case !overwrite:
			return "", fmt.Errorf("%s already exists: an upload link makes a new file; add --overwrite to let it replace this one", arg)
		}
	}
	return path, nil
}
