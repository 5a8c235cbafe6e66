package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/s3drive/s3drive/cmd/internal/control"
	s3fs "github.com/s3drive/s3drive/fs"
)

func statusCmd() *cobra.Command {
	var (
		asJSON bool
		watch  bool
	)
	cmd := &cobra.Command{
		Use:   "status [MOUNTPOINT]",
		Short: "Show what running mounts hold that S3 does not have yet: uploads (with progress, retries, last error), waiting folders and attributes, queued removals, requests and errors",
		Long: `Show, for each running s3drive mount (or the one at MOUNTPOINT), what it
holds that S3 does not have yet and how that is going: files waiting to
be uploaded (bytes sent of total, retries, the last error), new folders
and attribute changes waiting to be stored, removals queued, what this
run recovered from a previous one, the data cache's use, and S3 requests
and errors by operation.

--json prints the same as JSON: one object for MOUNTPOINT, else an array.
--watch redraws it every second until interrupted.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{fmt.Errorf("at most one MOUNTPOINT\nusage: %s", cmd.UseLine())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if asJSON && watch {
				return usageError{errors.New("--json and --watch do not go together")}
			}
			var mps []string
			if len(args) == 1 {
				mp, err := filepath.Abs(args[0])
				if err != nil {
					return err
				}
				mps = []string{mp}
			}
			if !watch {
				return showStatus(os.Stdout, mps, len(args) == 1, asJSON, false)
			}
			tty := isTerminal(os.Stdout)
			for {
				if tty {
					fmt.Print("\x1b[H\x1b[2J") // home, clear
				}
				if err := showStatus(os.Stdout, mps, true, false, tty); err != nil {
					return err
				}
				time.Sleep(time.Second)
			}
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (for scripts)")
	cmd.Flags().BoolVar(&watch, "watch", false, "redraw every second, with progress bars in a terminal")
	return cmd
}

// showStatus asks each mount in mps (every running one if empty) and
// prints the answers.
func showStatus(w io.Writer, mps []string, one, asJSON, bars bool) error {
	if len(mps) == 0 {
		all, err := control.Mounts()
		if err != nil {
			return err
		}
		mps = all
	}
	var all []*control.Status
	for _, mp := range mps {
		resp, err := control.Call(mp, control.Request{Op: control.OpStatus})
		switch {
		case err != nil && one:
			return fmt.Errorf("%s: no running s3drive mount answers there (%v)", mp, err)
		case err != nil:
			fmt.Fprintf(os.Stderr, "s3drive: %s: no answer (another user's mount?): %v\n", mp, err)
			continue
		case resp.Status == nil:
			return fmt.Errorf("%s: %s", mp, resp.Error)
		}
		all = append(all, resp.Status)
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if one {
			return enc.Encode(all[0])
		}
		if all == nil {
			all = []*control.Status{}
		}
		return enc.Encode(all)
	}
	if len(all) == 0 {
		fmt.Fprintln(w, "no s3drive mount is running")
	}
	for _, st := range all {
		printStatus(w, st, bars)
	}
	return nil
}

func printStatus(w io.Writer, st *control.Status, bars bool) {
	state := "online"
	if !st.Online {
		state = "OFFLINE: the server does not answer"
	}
	fmt.Fprintf(w, "%s  %s  (pid %d, up %s, %s)\n", st.Mountpoint, st.Source, st.PID,
		time.Since(st.Since).Round(time.Second), state)
	if len(st.Uploads) == 0 {
		fmt.Fprintln(w, "  uploads waiting: none")
	} else {
		fmt.Fprintf(w, "  uploads waiting: %d\n", len(st.Uploads))
	}
	for _, u := range st.Uploads {
		fmt.Fprintf(w, "    %s  %s\n", u.Path, uploadLine(u, bars))
	}
	if wb := st.WriteBack; wb != nil {
		fmt.Fprintf(w, "  write-back: %d closed file(s), %s of %s budget, safe on local disk and uploading\n",
			wb.Files, humanBytes(wb.Bytes), humanBytes(wb.Budget))
	}
	fmt.Fprintf(w, "  folders waiting: %d  attribute changes waiting: %d  removals queued: %d\n",
		len(st.WaitingFolders), len(st.WaitingAttributes), st.QueuedRemovals)
	for _, p := range st.WaitingFolders {
		fmt.Fprintf(w, "    folder %s\n", p)
	}
	for _, p := range st.WaitingAttributes {
		fmt.Fprintf(w, "    attributes of %s\n", p)
	}
	if st.Conflicts > 0 {
		fmt.Fprintf(w, "  conflicts: %d (changed elsewhere while changed here; both versions kept)\n", st.Conflicts)
		for _, c := range st.RecentConflicts {
			if c.SavedAs == "" {
				fmt.Fprintf(w, "    %s  %s: attribute change dropped, the other version's stand\n", c.At.Format(time.DateTime), c.Path)
				continue
			}
			fmt.Fprintf(w, "    %s  %s: the other version kept as %s\n", c.At.Format(time.DateTime), c.Path, c.SavedAs)
		}
	}
	if r := st.Recovered; len(r.Uploaded)+len(r.Conflicted)+len(r.Kept)+r.Aborted+r.Pending > 0 {
		fmt.Fprintf(w, "  recovered at start: %d uploaded, %d conflicted copies, %d kept in lost+found, %d multipart aborted, %d still pending\n",
			len(r.Uploaded), len(r.Conflicted), len(r.Kept), r.Aborted, r.Pending)
		for _, p := range r.Conflicted {
			fmt.Fprintf(w, "    conflicted: %s\n", p)
		}
		for _, p := range r.Kept {
			fmt.Fprintf(w, "    kept: %s\n", p)
		}
	}
	if st.DataCacheLimit > 0 {
		fmt.Fprintf(w, "  data cache: %s of %s\n", humanBytes(st.DataCacheBytes), humanBytes(st.DataCacheLimit))
	}
	fmt.Fprintf(w, "  requests: %s\n", tally(st.Requests))
	fmt.Fprintf(w, "  errors: %s\n", tally(st.Errors))
}

// uploadLine is one waiting upload's state.
func uploadLine(u s3fs.UploadStatus, bars bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s of %s", humanBytes(u.Sent), humanBytes(u.Size))
	if bars && u.Size > 0 {
		const width = 20
		done := int(u.Sent * width / u.Size)
		fmt.Fprintf(&b, " [%s%s]", strings.Repeat("#", done), strings.Repeat("-", width-done))
	}
	switch {
	case u.Writing:
		b.WriteString(", being written")
	case u.Uploading:
		b.WriteString(", uploading")
	case u.Retries == 0:
		b.WriteString(", closed, waiting its turn")
	}
	if u.Retries > 0 {
		fmt.Fprintf(&b, ", %d failed attempt(s)", u.Retries)
		if !u.NextRetry.IsZero() {
			fmt.Fprintf(&b, ", next in %s", max(0, time.Until(u.NextRetry)).Round(time.Second))
		}
	}
	if u.LastError != "" {
		fmt.Fprintf(&b, "; last error: %s", u.LastError)
	}
	return b.String()
}

// tally prints counts by name, in name order.
func tally(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
