package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/spf13/cobra"

	"github.com/s3drive/s3drive/cache"
	"github.com/s3drive/s3drive/cmd/internal/control"
	"github.com/s3drive/s3drive/cmd/internal/metrics"
	"github.com/s3drive/s3drive/cmd/internal/sdnotify"
	s3fs "github.com/s3drive/s3drive/fs"
	"github.com/s3drive/s3drive/fs/journal"
	"github.com/s3drive/s3drive/fs/share"
	"github.com/s3drive/s3drive/s3backend"
)

// mountFlags is everything the mount command takes, from CLI to filesystem.
type mountFlags struct {
	endpoint    string
	region      string
	profile     string
	credentials string
	pathStyle   bool
	readOnly    bool
	uid, gid    uint32
	fileMode    string
	dirMode     string
	allowOther  bool
	cacheDir    string
	cacheSize   string
	passthrough bool
	metadataTTL time.Duration
	negativeTTL time.Duration
	timeout     time.Duration
	maxInodes   int
	listPage    int
	metricsAddr string
	linkExpiry  time.Duration
	onConflict  string
	writeBack   bool
	wbBudget    string
	log         logFlags
	debug       bool
	pprof       string
	// set by demo only
	accessKey, secretKey string
	// stateKey names the state directory instead of the endpoint (the
	// demo's endpoint has a new port each run; its data dir does not).
	stateKey string
}

func (m *mountFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&m.endpoint, "endpoint", "", "S3-compatible endpoint URL (MinIO, versitygw, Ceph, R2…); path-style by default")
	f.StringVar(&m.region, "region", "", "AWS region (default: from the AWS config chain, else us-east-1)")
	f.StringVar(&m.profile, "profile", "", "AWS shared-config profile")
	f.StringVar(&m.credentials, "credentials-file", "", "AWS shared credentials file to read instead of ~/.aws/credentials (for fstab: credentials_file=/etc/s3drive/acme.credentials, mode 0600)")
	f.BoolVar(&m.pathStyle, "path-style", false, "force path-style addressing")
	f.BoolVar(&m.readOnly, "read-only", false, "mount read-only")
	f.Uint32Var(&m.uid, "uid", uint32(os.Getuid()), "owner of objects without uid metadata")
	f.Uint32Var(&m.gid, "gid", uint32(os.Getgid()), "group of objects without gid metadata")
	f.StringVar(&m.fileMode, "file-mode", "0644", "permissions of files without mode metadata (octal)")
	f.StringVar(&m.dirMode, "dir-mode", "0755", "permissions of folders without mode metadata (octal)")
	f.BoolVar(&m.allowOther, "allow-other", false, "let other users access the mount (needs user_allow_other in /etc/fuse.conf unless root)")
	f.StringVar(&m.cacheDir, "cache-dir", defaultCacheDir(), "where staged writes and the metadata store live")
	f.StringVar(&m.cacheSize, "cache-size", "10G", "room for file content in --cache-dir, so files read or written once are not fetched again (K, M, G, T; 0 turns it off)")
	f.BoolVar(&m.passthrough, "passthrough", false, "let the kernel read cached files straight from disk (Linux 6.9+, root; on by itself with --read-only); a file open that way cannot be opened for writing until closed")
	f.DurationVar(&m.metadataTTL, "metadata-ttl", time.Second, "how long metadata and listings are trusted before asking S3 again")
	f.DurationVar(&m.negativeTTL, "negative-ttl", 5*time.Second, "how long a name known not to exist (a lookup found nothing, or a listing did not show it) is trusted")
	f.BoolVar(&m.writeBack, "write-back", false, "close returns once the data is durable on local disk (synced, journaled) and uploads run in the background; fsync still waits for S3; a crash leaves them for the next mount")
	f.StringVar(&m.wbBudget, "write-back-budget", "1G", "with --write-back: bytes that may wait for upload before a close waits for its own (K, M, G)")
	f.StringVar(&m.onConflict, "on-conflict", "copy", "when a file was changed elsewhere since this mount read it: copy (keep both: these changes go to a \"conflicted copy\" beside it) or overwrite (last writer wins)")
	f.DurationVar(&m.linkExpiry, "link-expiry", share.DefaultExpiry, "how long share links live unless asked otherwise (s3drive url, the user.s3drive.url attribute); at most 168h")
	f.DurationVar(&m.timeout, "timeout", s3backend.DefaultTimeout, "how long a request may go without an answer or a byte moving before the call fails with EIO (and the mount serves what it holds)")
	f.IntVar(&m.maxInodes, "max-inodes", 16_384, "file inodes the kernel is left to hold (about 700 bytes each here); past it, it is asked to forget the idle ones looked up longest ago")
	f.IntVar(&m.listPage, "list-page-size", 1000, "keys per listing page (tests page often with a small one)")
	f.MarkHidden("list-page-size")
	f.StringVar(&m.metricsAddr, "metrics-addr", "", "serve Prometheus metrics on http://HOST:PORT/metrics (e.g. 127.0.0.1:9101)")
	f.StringVar(&m.log.format, "log-format", "text", "log lines as text (key=value) or json, one object per line")
	f.StringVar(&m.log.level, "log-level", "info", "least severe lines logged: debug, info, warn or error")
	f.StringVar(&m.log.file, "log-file", "", "append the log to this file instead of standard error")
	f.BoolVar(&m.debug, "debug", false, "log every FUSE operation and S3 request (--log-level debug, and go-fuse's trace)")
	f.StringVar(&m.pprof, "pprof", "", "serve Go's pprof profiles on this address (e.g. 127.0.0.1:6060)")
}

func defaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "s3drive")
	}
	if os.Geteuid() == 0 {
		return "/var/cache/s3drive" // no HOME: a mount by systemd
	}
	return filepath.Join(os.TempDir(), "s3drive-cache")
}

func mountCmd() *cobra.Command {
	var flags mountFlags
	cmd := &cobra.Command{
		Use:   "mount s3://BUCKET[/PREFIX] MOUNTPOINT",
		Short: "Mount a bucket, or a folder in it, at MOUNTPOINT (runs in the foreground)",
		Example: `  s3drive mount s3://firm-files/clients/acme ~/acme
  s3drive mount --endpoint http://127.0.0.1:7070 s3://bucket /mnt/bucket`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			bucket, prefix, err := parseS3URL(args[0])
			if err != nil {
				return usageError{err}
			}
			return runMount(cmd.Context(), flags, bucket, prefix, args[1], serving)
		},
	}
	flags.register(cmd)
	return cmd
}

// parseS3URL splits s3://bucket/prefix.
func parseS3URL(s string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%q is not an S3 URL: expected s3://BUCKET[/PREFIX]", s)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("%q names no bucket: expected s3://BUCKET[/PREFIX]", s)
	}
	prefix = strings.Trim(prefix, "/")
	for _, seg := range strings.Split(prefix, "/") {
		if prefix != "" && (seg == "" || seg == "." || seg == "..") {
			return "", "", fmt.Errorf("prefix %q has an empty, '.' or '..' segment", prefix)
		}
	}
	return bucket, prefix, nil
}

func parseMode(name, s string) (uint32, error) {
	var v uint32
	if _, err := fmt.Sscanf(s, "%o", &v); err != nil || v > 0o7777 {
		return 0, usageError{fmt.Errorf("--%s %q: want octal permissions such as 0644", name, s)}
	}
	return v, nil
}

// parseSize reads a byte count with an optional binary suffix: 512M, 10G.
func parseSize(name, s string) (int64, error) {
	bad := usageError{fmt.Errorf("--%s %q: want a size such as 500M or 10G (0 turns it off)", name, s)}
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	shift := 0
	if t != "" {
		if i := strings.IndexByte("KMGT", t[len(t)-1]); i >= 0 {
			shift = 10 * (i + 1)
			t = t[:len(t)-1]
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 || v > (1<<62)>>shift {
		return 0, bad
	}
	return v << shift, nil
}

// flushError means data could not be uploaded before exit.
type flushError struct{ error }

// runMount mounts and serves until unmounted or signalled. ready, if not
// nil, is called once the mount is live.
func runMount(ctx context.Context, flags mountFlags, bucket, prefix, mountpoint string, ready func()) error {
	fileMode, err := parseMode("file-mode", flags.fileMode)
	if err != nil {
		return err
	}
	dirMode, err := parseMode("dir-mode", flags.dirMode)
	if err != nil {
		return err
	}
	cacheSize, err := parseSize("cache-size", flags.cacheSize)
	if err != nil {
		return err
	}
	wbBudget := int64(1 << 30)
	if flags.wbBudget != "" {
		if wbBudget, err = parseSize("write-back-budget", flags.wbBudget); err != nil {
			return err
		}
		if wbBudget == 0 {
			return usageError{errors.New("--write-back-budget must be more than 0 (for closes that wait for S3, leave out --write-back)")}
		}
	}
	if flags.metadataTTL < 0 || flags.negativeTTL < 0 {
		return usageError{errors.New("--metadata-ttl and --negative-ttl cannot be negative")}
	}
	if flags.onConflict == "" {
		flags.onConflict = "copy" // the demo sets no mount flags
	}
	if flags.onConflict != "copy" && flags.onConflict != "overwrite" {
		return usageError{fmt.Errorf("--on-conflict %q: want copy or overwrite", flags.onConflict)}
	}
	if err := share.CheckExpiry(flags.linkExpiry); err != nil {
		return usageError{fmt.Errorf("--link-expiry: %w", err)}
	}
	if flags.maxInodes < 1 {
		return usageError{errors.New("--max-inodes must be at least 1")}
	}
	if flags.timeout < time.Second {
		return usageError{fmt.Errorf("--timeout %s: want at least 1s", flags.timeout)}
	}
	if flags.endpoint != "" {
		if u, err := url.Parse(flags.endpoint); err != nil || u.Scheme == "" || u.Host == "" {
			return usageError{fmt.Errorf("--endpoint %q: want a URL such as http://127.0.0.1:9000", flags.endpoint)}
		}
	}
	mountpoint, err = checkMountpoint(mountpoint)
	if err != nil {
		return err
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return errors.New("/dev/fuse is missing: install fuse3 (apt-get install fuse3) or load the fuse module")
	}

	log, logFile, err := newLogger(flags.log, flags.debug)
	if err != nil {
		return err
	}
	defer logFile.Close()
	slog.SetDefault(log)
	if os.Getenv("GOGC") == "" {
		// Most of the mount's heap is long-lived (inodes, listings,
		// metadata) and the rest short-lived request garbage, so Go's
		// default of letting the heap grow to twice what is live doubles
		// the resident set for little gain: at half, ls -l of 100,000
		// files peaks at 133 MiB instead of 172, in the same time.
		debug.SetGCPercent(50)
	}
	if flags.pprof != "" {
		// net/http/pprof registers its handlers on the default mux.
		go func() { log.Error("pprof server stopped", "err", http.ListenAndServe(flags.pprof, nil)) }()
	}

	source := "s3://" + bucket
	if prefix != "" {
		source += "/" + prefix
	}
	stateKey := flags.endpoint
	if flags.stateKey != "" {
		stateKey = flags.stateKey
	}
	id := sha256.Sum256([]byte(stateKey + "\x00" + bucket + "\x00" + prefix))
	stateDir := filepath.Join(flags.cacheDir, hex.EncodeToString(id[:8]))
	jr, err := journal.Open(filepath.Join(stateDir, "journal.db"), source)
	if err != nil {
		return err
	}
	defer jr.Close()
	if err := writeStateSource(stateDir, stateSource{Endpoint: flags.endpoint, Source: source}); err != nil {
		return fmt.Errorf("cache dir: %w", err)
	}
	warnOtherPending(flags.cacheDir, stateDir, log)

	if flags.accessKey != "" {
		os.Setenv("AWS_ACCESS_KEY_ID", flags.accessKey)
		os.Setenv("AWS_SECRET_ACCESS_KEY", flags.secretKey)
	}
	var observed *metrics.Metrics
	var observer s3backend.Observer // nil unless --metrics-addr
	if flags.metricsAddr != "" {
		observed = metrics.New()
		observer = observed
	}
	be, err := s3backend.New(ctx, s3backend.Config{
		Bucket: bucket, Prefix: prefix, Endpoint: flags.endpoint, Region: flags.region,
		Profile: flags.profile, CredentialsFile: flags.credentials, PathStyle: flags.pathStyle, Timeout: flags.timeout, Uploads: jr,
		Observer: observer, Logger: log,
	})
	if err != nil {
		return err
	}
	if err := be.Check(ctx); err != nil {
		return explainCheck(err, bucket, prefix, flags.endpoint)
	}
	if !flags.readOnly && flags.onConflict == "copy" {
		sup, probed := conditionSupport(ctx, stateDir, be, log)
		be.UseConditions(sup)
		if !sup.Put || !sup.Copy {
			level := slog.LevelInfo // said when first found
			if probed {
				level = slog.LevelWarn
			}
			log.Log(ctx, level, "the server ignores some conditional writes: each such write is checked by a HEAD first, which a write elsewhere in between can still overtake",
				"put_honoured", sup.Put, "copy_honoured", sup.Copy)
		}
	}

	mc, err := cache.Open(cache.Options{TTL: flags.metadataTTL, NegativeTTL: flags.negativeTTL,
		StorePath: filepath.Join(stateDir, "meta.db")})
	if err != nil {
		return err
	}
	defer mc.Close()
	var data *cache.Data
	if cacheSize > 0 {
		// Beside the staging directory: an uploaded file joins the cache
		// by hard link.
		if data, err = cache.OpenData(filepath.Join(stateDir, "data"), cacheSize); err != nil {
			return fmt.Errorf("data cache: %w", err)
		}
	}
	fsys, err := s3fs.New(s3fs.Options{
		Backend: be, Cache: mc, Data: data, Passthrough: flags.passthrough, StagingDir: filepath.Join(stateDir, "staging"), Journal: jr, Mountpoint: mountpoint,
		ReadOnly: flags.readOnly, UID: flags.uid, GID: flags.gid, FileMode: fileMode, DirMode: dirMode,
		MaxInodes: flags.maxInodes, ListPageSize: flags.listPage, LinkExpiry: flags.linkExpiry,
		Overwrite: flags.onConflict == "overwrite", PrefixRoot: prefix != "", WriteBack: flags.writeBack, WriteBackBudget: wbBudget,
		Logger: log,
	})
	if err != nil {
		return err
	}
	if observed != nil {
		src := metrics.Source{
			Pending:        func() (int, int64) { return fsys.Pending(), fsys.PendingBytes() },
			UploadFailures: fsys.UploadFailures,
			Conflicts:      func() int64 { n, _ := fsys.Conflicts(); return n },
			Caches: func() map[string][2]int64 {
				tallies := map[string][2]int64{}
				hits, misses := mc.Tally().Counts()
				tallies["metadata"] = [2]int64{hits, misses}
				if data != nil {
					hits, misses = data.Tally().Counts()
					tallies["data"] = [2]int64{hits, misses}
				}
				return tallies
			},
		}
		if err := observed.Serve(flags.metricsAddr, src, log); err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
	}
	rec, err := fsys.Recover(ctx)
	if err != nil {
		return fmt.Errorf("reading the journal of a previous run: %w", err)
	}
	if n := len(rec.Uploaded) + len(rec.Conflicted) + len(rec.Kept) + rec.Aborted + rec.Pending; n > 0 {
		log.Warn("recovered what a previous run left", "uploaded", len(rec.Uploaded), "conflicted", len(rec.Conflicted),
			"kept_in_lost+found", len(rec.Kept), "multipart_aborted", rec.Aborted, "still_pending", rec.Pending)
	}
	opts := fsys.MountOptions(source, flags.allowOther, flags.debug)
	raw := gofs.NewNodeFS(fsys.Root(), opts)
	if observed != nil {
		raw = observed.CountFUSE(raw)
	}
	server, err := fuse.NewServer(raw, mountpoint, &opts.MountOptions)
	if err != nil {
		return fmt.Errorf("mounting %s: %w", mountpoint, err)
	}
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		return fmt.Errorf("mounting %s: %w", mountpoint, err)
	}
	fsys.Mounted(server)
	if err := s3fs.RaiseReadAhead(mountpoint); err != nil {
		log.Debug("kernel read-ahead left at its default", "err", err)
	}
	if fsys.ProbePassthrough(server) {
		log.Info("FUSE passthrough on: cached files are read by the kernel directly")
	}
	// s3drive unmount asks through the control socket, to learn how the
	// final upload went; s3drive url and status ask through it too.
	ctrl := &controller{mountpoint: mountpoint, source: source, since: time.Now(), server: server, fsys: fsys,
		be: be, recovered: rec, final: make(chan error, 1)}
	ctl, err := control.Listen(mountpoint)
	if err != nil {
		log.Warn("no control socket: s3drive unmount cannot report unsent data, nor url and status answer", "err", err)
	} else {
		go ctl.Serve(ctrl.handle)
	}
	fmt.Printf("s3drive: mounted %s at %s; stop with: s3drive unmount %s (or Ctrl-C)\n", source, mountpoint, mountpoint)
	if ready != nil {
		ready()
	}
	sdnotify.Ready(sdnotify.Serving(fsys.Pending()))
	statusCtx, stopStatus := context.WithCancel(ctx)
	defer stopStatus()
	go sdnotify.Watch(statusCtx, 5*time.Second, fsys.Pending)

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-signals
		log.Info("signal received: uploading pending changes, then unmounting", "signal", sig.String())
		sdnotify.Stopping(stoppingStatus(fsys.Pending()))
		if err := fsys.FlushAll(context.Background()); err != nil {
			log.Error("flush before unmount", "err", err)
		}
		if err := server.Unmount(); err != nil {
			// Busy (a shell is inside it): detach now; the kernel finishes
			// the unmount when the last user leaves.
			log.Warn("unmount busy, detaching lazily", "err", err)
			syscall.Unmount(mountpoint, syscall.MNT_DETACH)
		}
	}()
	server.Wait()
	stopStatus()
	sdnotify.Stopping(stoppingStatus(fsys.Pending()))
	err = fsys.FlushAll(context.Background())
	ctrl.final <- err
	if ctl != nil {
		ctl.Close() // after the unmount's answer went out
	}
	if err != nil {
		return flushError{err}
	}
	log.Info("unmounted", "mountpoint", mountpoint)
	return nil
}

// stoppingStatus is the status line while the drive flushes to exit.
func stoppingStatus(pending int) string {
	return fmt.Sprintf("unmounting; uploading %d file(s) with pending changes first", pending)
}

// checkMountpoint explains what is wrong with a mountpoint before the
// kernel gives a terse errno.
func checkMountpoint(mp string) (string, error) {
	abs, err := filepath.Abs(mp)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("mountpoint %s does not exist (create it with mkdir -p)", abs)
	case err != nil:
		return "", fmt.Errorf("mountpoint %s: %w", abs, err)
	case !st.IsDir():
		return "", fmt.Errorf("mountpoint %s is not a directory", abs)
	}
	if mounted, err := control.IsMountpoint(abs); err == nil && mounted {
		return "", fmt.Errorf("%s is already a mountpoint (unmount it first: s3drive unmount %s)", abs, abs)
	}
	d, err := os.Open(abs)
	if err != nil {
		return "", fmt.Errorf("mountpoint %s: %w", abs, err)
	}
	defer d.Close()
	if _, err := d.Readdirnames(1); err != io.EOF {
		return "", fmt.Errorf("mountpoint %s is not empty", abs)
	}
	return abs, nil
}

// explainCheck turns the startup probe's failure into one clear line.
func explainCheck(err error, bucket, prefix, endpoint string) error {
	where := "AWS"
	if endpoint != "" {
		where = endpoint
	}
	switch {
	case errors.Is(err, s3backend.ErrNoSuchBucket):
		return fmt.Errorf("bucket %q does not exist at %s", bucket, where)
	case errors.Is(err, s3backend.ErrBadCredentials):
		return fmt.Errorf("%s rejected the credentials for bucket %q (check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or --profile): %s", where, bucket, s3backend.Plain(err))
	case errors.Is(err, s3backend.ErrAccessDenied):
		folder := "s3://" + bucket + "/" + prefix
		listing := fmt.Sprintf("s3:ListBucket on bucket %q with s3:prefix %q", bucket, prefix+"/")
		if prefix == "" {
			folder, listing = "s3://"+bucket, fmt.Sprintf("s3:ListBucket on bucket %q", bucket)
		}
		return fmt.Errorf("%s refused to list %s: the credentials were accepted, but lack %s (s3drive policy %s prints what a mount of that folder needs)",
			where, folder, listing, folder)
	case errors.Is(err, s3backend.ErrSpeaksTLS):
		return fmt.Errorf("%s speaks HTTPS, not plain HTTP: use --endpoint %s", where, strings.Replace(where, "http://", "https://", 1))
	case errors.Is(err, s3backend.ErrNoCredentials):
		return errors.New("no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pick a profile with --profile (or AWS_PROFILE), or run where an instance or container role is available")
	case errors.Is(err, s3backend.ErrTimeout):
		return fmt.Errorf("%s accepted the connection but did not answer within --timeout; is it an S3 endpoint, and is it healthy?", where)
	case errors.Is(err, s3backend.ErrUnreachable), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("cannot reach %s: %s", where, s3backend.Plain(err))
	case errors.Is(err, s3backend.ErrPlainHTTP):
		return fmt.Errorf("%s answers plain HTTP, not HTTPS: use --endpoint %s", where, strings.Replace(where, "https://", "http://", 1))
	case errors.Is(err, s3backend.ErrBucketName):
		return fmt.Errorf("%s refuses %q as a bucket name (S3 bucket names are 3 to 63 lowercase letters, digits, dots and hyphens)", where, bucket)
	}
	return fmt.Errorf("checking bucket %q at %s: %s", bucket, where, s3backend.Plain(err))
}

func unmountCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "unmount MOUNTPOINT",
		Short: "Unmount a drive: the running s3drive uploads pending changes and exits; exit status 3 (naming the files) if some could not be uploaded",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			mp, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			if mounted, _ := control.IsMountpoint(mp); !mounted {
				return fmt.Errorf("%s is not mounted", mp)
			}
			resp, err := control.Call(mp, control.Request{Op: "unmount"})
			switch {
			case err == nil && resp.Code == exitNotFlush:
				return flushError{errors.New(resp.Error)}
			case err == nil && resp.Code != 0:
				return errors.New(resp.Error)
			case err == nil:
				return nil
			case !errors.Is(err, control.ErrNoMount):
				return err
			}
			// Not an s3drive with a control socket: unmount as umount does.
			if err := syscall.Unmount(mp, 0); err == nil {
				return nil
			} else if !errors.Is(err, syscall.EPERM) {
				return fmt.Errorf("unmounting %s: %w", mp, err)
			}
			out, err := execFusermount(mp)
			if err != nil {
				return fmt.Errorf("unmounting %s: %v: %s", mp, err, strings.TrimSpace(string(out)))
			}
			return nil
		},
	}
}
