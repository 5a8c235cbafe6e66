package fs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/s3drive/s3drive/cache"
	"github.com/s3drive/s3drive/fs/journal"
	"github.com/s3drive/s3drive/fs/share"
	"github.com/s3drive/s3drive/s3backend"
	"golang.org/x/sys/unix"
)

// Options configure a filesystem.
type Options struct {
	Backend s3backend.Backend
	Cache   *cache.Cache
	// Data, if set, keeps whole files' content on local disk: read once,
	// not fetched again.
	Data *cache.Data
	// Passthrough lets the kernel read files whole in Data straight from
	// local disk (FUSE passthrough, Linux 6.9+, root). The kernel refuses
	// to mix such opens with ordinary ones on one file: while a file is
	// open this way, opening it for writing fails with ETXTBSY. Always on
	// for read-only mounts, where nothing writes. See ProbePassthrough.
	Passthrough bool
	// Mountpoint is where the drive is mounted (absolute, as mountinfo
	// shows it), used to tell this mount's descriptors in /proc.
	Mountpoint string
	// StagingDir holds files being written until they are uploaded.
	StagingDir string
	// Journal records what the staging files are, for the next run to
	// finish after a crash (see Recover); nil keeps no journal.
	Journal  *journal.Journal
	ReadOnly bool
	// UID, GID, FileMode and DirMode apply to objects without metadata.
	UID, GID          uint32
	FileMode, DirMode uint32
	// ListPageSize is the keys asked for per ListObjectsV2 page (default
	// and S3's maximum 1,000; tests make it small to page often).
	ListPageSize int
	// MaxInodes bounds the file and symlink inodes the kernel is left to
	// hold (default 16,384; see inodes.go).
	MaxInodes int
	// HeadConcurrency bounds the HEADs a walk sends ahead (default 32).
	HeadConcurrency int
	// CopyConcurrency bounds the copies of a folder move (default 32).
	CopyConcurrency int
	// MetaDelay is how long a chmod, utimes or chown of a file already in
	// S3 may wait to be stored, so that a rename or upload soon after
	// carries it instead of a copy of its own (default 2 s). Fsync, close
	// and unmount store it at once.
	MetaDelay time.Duration
	// WriteBack makes close return once the data is durable on local disk,
	// uploading in the background (writeback.go); WriteBackBudget bounds
	// the bytes waiting (default 1 GiB).
	WriteBack       bool
	WriteBackBudget int64
	// PrefixRoot: the mount's root is a folder in the bucket (a prefix),
	// whose marker holds the root's attributes.
	PrefixRoot bool
	// Overwrite makes writes unconditional: the last writer wins, and a
	// version written elsewhere since this mount read a file is replaced
	// without a trace (--on-conflict overwrite). Off, a write whose name
	// changed elsewhere keeps both (conflict.go).
	Overwrite bool
	// LinkExpiry is how long the link in the user.s3drive.url attribute
	// lives (default share.DefaultExpiry).
	LinkExpiry time.Duration
	Logger     *slog.Logger
}

// FS is one mounted drive: the node tree's shared state.
type FS struct {
	opts  Options
	be    s3backend.Backend
	cache *cache.Cache
	data  *cache.Data // nil: no data cache
	// deletes is also be: the backend with file deletes batched.
	deletes *deferredDeletes
	// clock orders answers from S3 against this mount's changes.
	clock *changeClock
	// passthrough is on when asked for and the kernel accepted a probe.
	passthrough atomic.Bool
	// directMmap: the kernel maps files open for direct I/O (Linux 6.6+).
	directMmap atomic.Bool
	log        *slog.Logger
	root       *Dir

	headSlots chan struct{}
	pendingMu sync.Mutex // protects pending
	pending   map[string]*headCall

	dirtyMu sync.Mutex // protects dirty
	dirty   map[*File]struct{}

	markers pendingMarkers

	listMu    sync.Mutex // protects listCalls
	listCalls map[string]*listCall
	walkSlots chan struct{}

	hiddenMu sync.Mutex // protects hidden
	hidden   map[string]bool

	journal *journal.Journal
	retries retries
	mntOnce sync.Once
	mntID   string

	nextIno atomic.Uint64
	inodes  *inodeBudget
	// orphans are files the kernel forgot with changes still to store,
	// by key (see File.key): a lookup of the key stores them first.
	orphans sync.Map
	large   sync.Map // folder keys known to need more than one listing page

	conflicts     conflicts
	conflictCount atomic.Int64

	rootLoaded   atomic.Bool // the root's marker was read (loadRoot)
	writeBacks   writeBacks
	landedKeys   landedKeys   // see landed.go
	markerChecks markerChecks // see markerless.go
	parked       parkedFetchers

	awaitMu sync.Mutex // protects awaited
	// awaited are keys an upload link may fill, until when (sharelinks.go).
	awaited map[string]time.Time
}

// New checks opts and returns a filesystem ready to mount.
func New(opts Options) (*FS, error) {
	if opts.Backend == nil || opts.Cache == nil {
		return nil, errors.New("fs: a backend and a cache are required")
	}
	if err := os.MkdirAll(opts.StagingDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating staging directory: %w", err)
	}
	if opts.HeadConcurrency <= 0 {
		opts.HeadConcurrency = 32
	}
	if opts.ListPageSize <= 0 || opts.ListPageSize > 1000 {
		opts.ListPageSize = 1000
	}
	if opts.MaxInodes <= 0 {
		opts.MaxInodes = 16_384
	}
	if opts.CopyConcurrency <= 0 {
		opts.CopyConcurrency = 32
	}
	if opts.WriteBackBudget <= 0 {
		opts.WriteBackBudget = 1 << 30
	}
	if opts.LinkExpiry <= 0 {
		opts.LinkExpiry = share.DefaultExpiry
	}
	if err := share.CheckExpiry(opts.LinkExpiry); err != nil {
		return nil, fmt.Errorf("link expiry: %w", err)
	}
	if opts.MetaDelay <= 0 {
		opts.MetaDelay = 2 * time.Second
	}
	if opts.FileMode == 0 {
		opts.FileMode = 0o644
	}
	if opts.DirMode == 0 {
		opts.DirMode = 0o755
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	f := &FS{
		opts: opts, be: opts.Backend, cache: opts.Cache, data: opts.Data, journal: opts.Journal, log: opts.Logger,
		headSlots: make(chan struct{}, opts.HeadConcurrency),
		pending:   map[string]*headCall{}, dirty: map[*File]struct{}{}, hidden: map[string]bool{},
	}
	f.markers.pending = map[string]*pendingMarker{}
	f.listCalls = map[string]*listCall{}
	f.walkSlots = make(chan struct{}, walkListings)
	f.inodes = newInodeBudget(opts.MaxInodes)
	f.parked = newParkedFetchers()
	f.clock = newChangeClock()
	f.deletes = newDeferredDeletes(opts.Backend, opts.Logger)
	f.be = f.deletes
	f.root = &Dir{fsys: f}
	f.nextIno.Store(1) // the root is 1
	return f, nil
}

// settleOrphan stores what a forgotten file left to store under key before
// a new inode takes the key, so that the new one's changes come after it.
// It reports whether there was one, and an errno if its changes could not
// be stored: the name's state is then the forgotten file's, which only
// this mount holds, and no other inode may take the key until they are
// stored (it would not see them, and they would land over it later).
func (f *FS) settleOrphan(ctx context.Context, key string) (bool, syscall.Errno) {
	o, ok := f.orphans.Load(key)
	if !ok {
		return false, 0
	}
	if errno := o.(*File).sync(ctx); errno != 0 {
		f.log.Warn("a forgotten file's changes are still not stored; the name waits for them", "key", key, "errno", errno)
		return true, errno
	}
	return true, 0
}

// Root is the node to mount.
func (f *FS) Root() fs.InodeEmbedder { return f.root }

// MountOptions returns go-fuse options for this drive. ttl drives the
// kernel's entry and attribute caches, negTTL its negative entries.
func (f *FS) MountOptions(fsName string, allowOther, debugLog bool) *fs.Options {
	ttl, negTTL := f.cache.TTL(), f.cache.NegativeTTL()
	opts := &fs.Options{
		// All three timeouts are set explicitly: nil would mean zero.
		EntryTimeout:    &ttl,
		AttrTimeout:     &ttl,
		NegativeTimeout: &negTTL,
		UID:             f.opts.UID,
		GID:             f.opts.GID,
		// The root's inode number, as stat shows it (go-fuse's default
		// is 0, which some programs take for "no inode").
		RootStableAttr: &fs.StableAttr{Ino: 1, Mode: syscall.S_IFDIR},
		// Modes are ours to the bit: a file created with mode 0 is 0000
		// (go-fuse would show 0644 for it).
		NullPermissions: true,
		MountOptions: fuse.MountOptions{
			FsName:     fsName,
			Name:       "s3drive",
			AllowOther: allowOther,
			Debug:      debugLog,
			// 1 MiB writes: fewer round trips through the daemon per MiB.
			MaxWrite: 1 << 20,
			// Replies are bytes in memory, which go-fuse would still try
			// to pass through a pipe: for a 1 MiB read that fails and logs
			// a line (the pipe holds 1 MiB, the reply and its header more),
			// for smaller ones it costs three system calls more than
			// writing the reply.
			DisableSplice: true,
			// Lets the kernel keep enough reads and writes in flight to
			// overlap S3 latency.
			MaxBackground: 64,
			// Without this the kernel asks for security.* xattrs around
			// every write; S3 has none.
			IgnoreSecurityLabels: true,
			// HANDLE_KILLPRIV_V2: the drive clears set-user-ID bits itself
			// on write, so the kernel stops asking for security.capability
			// before every write request (one round trip per MiB written,
			// otherwise). DIRECT_IO_ALLOW_MMAP: files open in direct I/O
			// can still be mapped (see openFlags). ATOMIC_O_TRUNC: O_TRUNC
			// arrives with the open, instead of as a truncate after it, so
			// the open knows it starts the file empty.
			ExtraCapabilities: fuse.CAP_HANDLE_KILLPRIV_V2 | fuse.CAP_DIRECT_IO_ALLOW_MMAP | fuse.CAP_ATOMIC_O_TRUNC,
			// The kernel enforces the modes we show, as on a local disk.
			Options:     []string{"default_permissions"},
			DirectMount: os.Geteuid() == 0,
			// A bug in one handler logs its stack and fails that call with
			// EIO instead of taking the whole drive down.
			PanicHandler: func(p any) fuse.Status {
				f.log.Error("panic in filesystem handler", "panic", p, "stack", string(debug.Stack()))
				return fuse.EIO
			},
		},
	}
	if f.opts.ReadOnly {
		opts.MountOptions.Options = append(opts.MountOptions.Options, "ro")
	}
	return opts
}

// Stats renders the backend's request counters as JSON (served as the
// root's user.s3drive.stats xattr).
func (f *FS) Stats() []byte {
	b, _ := json.Marshal(f.be.Counters())
	return b
}

// readAheadKB is the kernel read-ahead asked for a mount. At the kernel's
// default (128 KiB) a sequential reader's data crosses the FUSE device in
// 128 KiB requests; from 1 MiB on it comes in MaxWrite-sized (1 MiB) ones,
// and a cold read of a large file took a fifth less time. The kernel starts
// each file's window small and grows it only while reads stay sequential,
// so random readers do not pay for the size.
const readAheadKB = 16 << 10

// RaiseReadAhead sets the read-ahead of the FUSE mount at mountpoint in
// sysfs, which only root may write; elsewhere it fails and the kernel's
// default stays. Call it once the server is mounted.
func RaiseReadAhead(mountpoint string) error {
	var st unix.Stat_t
	if err := unix.Stat(mountpoint, &st); err != nil {
		return err
	}
	bdi := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	return os.WriteFile(bdi, []byte(fmt.Sprint(readAheadKB)), 0)
}

// Mounted records what the kernel agreed to at mount. Call it once the
// server is mounted.
func (f *FS) Mounted(server *fuse.Server) {
	// Asked for in MountOptions, so granted wherever offered.
	f.directMmap.Store(server.KernelSettings().Flags64()&fuse.CAP_DIRECT_IO_ALLOW_MMAP != 0)
}

// ProbePassthrough turns passthrough on if it was asked for (or the mount
// is read-only) and the kernel accepts a backing file from this server; it
// reports whether it did. Call it once the server is mounted.
func (f *FS) ProbePassthrough(server *fuse.Server) bool {
	if f.data == nil || !(f.opts.Passthrough || f.opts.ReadOnly) {
		return false
	}
	probe, err := os.CreateTemp(f.opts.StagingDir, "passthrough-probe-*")
	if err != nil {
		return false
	}
	defer os.Remove(probe.Name())
	defer probe.Close()
	id, errno := server.RegisterBackingFd(&fuse.BackingMap{Fd: int32(probe.Fd())})
	if errno != 0 {
		f.log.Info("FUSE passthrough unavailable; cached files are read through the daemon", "err", errno)
		return false
	}
	server.UnregisterBackingFd(id)
	f.passthrough.Store(true)
	return true
}

// forgetData frees the data cache's copy of a key that is gone.
func (f *FS) forgetData(key string) {
	if f.data != nil {
		f.data.Forget(key)
	}
}

// rootInode is the mounted root.
func (f *FS) rootInode() *fs.Inode { return f.root.EmbeddedInode() }

// hide logs, once per key, an object that cannot be shown as a file.
func (f *FS) hide(key, why string) {
	f.hiddenMu.Lock()
	seen := f.hidden[key]
	f.hidden[key] = true
	f.hiddenMu.Unlock()
	if !seen {
		f.log.Warn("object hidden: its key cannot be a file name", "key", key, "why", why)
	}
}

// markDirty and markClean track files with data not yet in S3, so that
// unmount and SIGTERM can upload them first.
func (f *FS) markDirty(file *File) {
	f.dirtyMu.Lock()
	f.dirty[file] = struct{}{}
	f.dirtyMu.Unlock()
}

func (f *FS) markClean(file *File) {
	f.dirtyMu.Lock()
	delete(f.dirty, file)
	f.dirtyMu.Unlock()
}

// dirtyFiles is a snapshot of the files with changes not yet in S3.
func (f *FS) dirtyFiles() []*File {
	f.dirtyMu.Lock()
	defer f.dirtyMu.Unlock()
	return slices.Collect(maps.Keys(f.dirty))
}

// Pending is how many files have changes not yet in S3.
func (f *FS) Pending() int {
	f.dirtyMu.Lock()
	defer f.dirtyMu.Unlock()
	return len(f.dirty)
}

// flushParallel is how many files FlushAll uploads at once.
const flushParallel = 16

// FlushAll uploads every file with staged changes. It returns an error
// naming how many could not be uploaded; their staged data stays on disk.
func (f *FS) FlushAll(ctx context.Context) error {
	var (
		mu     sync.Mutex
		failed []string
	)
	// Several at once: under write-back, unmount may find thousands
	// queued.
	parallel(flushParallel, f.dirtyFiles(), nil, func(file *File) {
		if errno := file.sync(ctx); errno != 0 {
			key, _ := file.key()
			mu.Lock()
			failed = append(failed, key)
			mu.Unlock()
		}
	})
	if len(failed) > 0 {
		slices.Sort(failed)
		names := strings.Join(failed[:min(len(failed), 10)], ", ")
		if len(failed) > 10 {
			names += fmt.Sprintf(" and %d more", len(failed)-10)
		}
		return fmt.Errorf("%d file(s) could not be uploaded (%s); their data is kept in %s and the next mount with this --cache-dir uploads it",
			len(failed), names, f.opts.StagingDir)
	}
	return f.sendWaiting(ctx)
}

// sendWaiting sends what the mount shows already but S3 has not got yet,
// apart from files' data: folder markers, then queued removals. fsync of a
// folder and unmount both call it.
func (f *FS) sendWaiting(ctx context.Context) error {
	if errno := f.flushMarkers(ctx, ""); errno != 0 {
		return fmt.Errorf("folder attributes could not be stored: %w", errno)
	}
	return f.deletes.Flush(ctx)
}

// attrFor fills out from what is known of an object, with the mount's
// defaults where the object carries no metadata.
func (f *FS) attrFor(m cache.Meta, kind uint32, out *fuse.Attr) {
	perm := f.opts.FileMode
	if kind == syscall.S_IFDIR {
		perm = f.opts.DirMode
	}
	if m.Mode != 0 {
		perm = m.Mode & 0o7777
	}
	out.Mode = kind | perm
	out.Size = uint64(m.Size)
	if kind == syscall.S_IFCHR || kind == syscall.S_IFBLK {
		out.Rdev = rdev(m)
	}
	if kind == syscall.S_IFDIR {
		out.Size = 4096
	}
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = 1 << 20
	out.Nlink = 1
	out.Uid, out.Gid = f.opts.UID, f.opts.GID
	if m.HasUID {
		out.Uid = m.UID
	}
	if m.HasGID {
		out.Gid = m.GID
	}
	t := m.Mtime
	if t.IsZero() {
		t = m.LastModified
	}
	if t.IsZero() {
		// A folder without a marker has no time of its own in S3: the
		// epoch, as s3fs shows, the same on every mount and machine (the
		// mount's start time would change at each remount, and rsync -t
		// would see every such folder changed).
		t = time.Unix(0, 0)
	}
	atime, ctime := t, t
	if !m.Atime.IsZero() {
		atime = m.Atime
	}
	if !m.Ctime.IsZero() {
		ctime = m.Ctime
	}
	out.SetTimes(&atime, &t, &ctime)
}

// stable returns the identity of a new inode. Numbers come from a counter:
// small, unique for the mount's life, and never derived from keys (go-fuse
// merges inodes that share a number).
func (f *FS) stable(mode uint32) fs.StableAttr {
	return fs.StableAttr{Mode: mode, Ino: f.nextIno.Add(1)}
}
