// Command bench measures s3drive on the workloads of docs/PERFORMANCE.md
// against a raw aws-sdk-go-v2 client on the same versitygw server, in the
// same run, and prints one table: seconds, ratio to raw, S3 requests by
// operation (from the mount's own counters) and the mount's peak RSS.
// s3fs and rclone, when installed, run the same workloads.
//
//	go run ./cmd/bench            # from the repository root, as root
//	go run ./cmd/bench -size 256  # smaller files (MiB), for a quick look
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/s3drive/s3drive/integration/s3server"
	"golang.org/x/sys/unix"
)

const (
	bucket   = "bench"
	partSize = 16 << 20 // the raw client's multipart part and range size
	inFlight = 8        // the raw client's parts and ranges in flight
	mib      = 1 << 20
)

func main() {
	sizeMiB := flag.Int("size", 1024, "size in MiB of the large-file workloads")
	rssMiB := flag.Int("rss-size", 4096, "size in MiB of the file written and read to measure peak RSS (0 skips)")
	tree := flag.String("tree", filepath.Join(runtime.GOROOT(), "src", "crypto"), "folder copied by the tree workloads (empty skips them)")
	runs := flag.Int("runs", 3, "runs of the large-file workloads and their raw baselines; the median is reported")
	latency := flag.Duration("latency", 0, "delay added to each direction of every connection to the server, as to a distant S3 region (every tool and the raw client go through it)")
	keep := flag.Bool("keep", false, "keep the work directory")
	only := flag.String("tools", "s3drive,s3drive-writeback,s3fs,rclone", "tools to run, comma-separated (peers only when installed)")
	folders := flag.String("folders", "", "sizes of the big-folder workloads, comma-separated (e.g. 1000,10000,100000; empty skips them)")
	flag.Parse()
	var sizes []int
	for _, f := range strings.FieldsFunc(*folders, func(r rune) bool { return r == ',' }) {
		n, err := strconv.Atoi(strings.ReplaceAll(f, "_", ""))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "bench: -folders: %q is not a number of objects\n", f)
			os.Exit(2)
		}
		sizes = append(sizes, n)
	}
	if err := run(int64(*sizeMiB)*mib, int64(*rssMiB)*mib, max(*runs, 1), *latency, *tree, *keep, strings.Split(*only, ","), sizes); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// row is one line of the result table.
type row struct {
	workload string
	tool     string
	seconds  float64
	raw      float64 // 0: no raw baseline
	requests map[string]int64
	note     string
}

type bench struct {
	work   string
	binary string
	srv    *s3server.Server
	// endpoint is where every client connects: the server, or a proxy
	// adding latency in front of it.
	endpoint string
	client   *s3.Client
	rows     []row
	mounts   []*mount
}

// tool is a FUSE filesystem for S3 the benchmark can mount.
type tool struct {
	name string
	// start runs the tool in the foreground, mounting prefix at dir.
	start func(b *bench, prefix, dir, cacheDir string) (*exec.Cmd, error)
	// durable: close and fsync return once the data is in S3.
	durable bool
	// treesOnly: only the tree workloads run (see s3driveWriteBack).
	treesOnly bool
}

func run(size, rssSize int64, runs int, latency time.Duration, tree string, keep bool, only []string, folders []int) error {
	if os.Geteuid() != 0 {
		return errors.New("run as root: the benchmark mounts FUSE filesystems")
	}
	work, err := os.MkdirTemp("", "s3drive-bench-")
	if err != nil {
		return err
	}
	b := &bench{work: work, binary: filepath.Join(work, "s3drive")}
	defer func() {
		// A tool that failed may still be mounted inside work: detach it
		// first, or removing work would walk into it.
		for _, m := range b.mounts {
			if mounted(m.dir) {
				exec.Command("umount", "-l", m.dir).Run()
				m.cmd.Process.Kill()
			}
		}
		if !keep {
			os.RemoveAll(work)
		}
	}()
	if out, err := exec.Command("go", "build", "-o", b.binary, "./cmd/s3drive").CombinedOutput(); err != nil {
		return fmt.Errorf("building s3drive (run from the repository root): %v\n%s", err, out)
	}
	vgw, err := s3server.Binary()
	if err != nil {
		return err
	}
	// Quiet on stdout, whose line per request is nobody's cost; the access
	// log file counts every tool's requests alike (folders.go).
	if b.srv, err = s3server.Start(vgw, filepath.Join(work, "s3"), "--quiet", "--access-log", b.accessLog()); err != nil {
		return err
	}
	defer b.srv.Stop()
	b.endpoint = b.srv.Endpoint
	if latency > 0 {
		proxy, err := startDelayProxy(strings.TrimPrefix(b.srv.Endpoint, "http://"), latency)
		if err != nil {
			return err
		}
		defer proxy.close()
		b.endpoint = "http://" + proxy.addr()
	}
	b.client = s3server.Client(b.endpoint)
	ctx := context.Background()
	if _, err := b.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: %d cores, versitygw at %s (+%v each way), work in %s\n", runtime.NumCPU(), b.srv.Endpoint, latency, work)

	var raw baseline
	src := filepath.Join(work, "src.bin")
	if size > 0 {
		if err := writeRandom(src, size); err != nil {
			return err
		}
		if raw, err = b.rawBaseline(ctx, src, size, runs); err != nil {
			return err
		}
	}
	if tree != "" {
		// What a durable cp -r cannot beat: cp closes each file before the
		// next, and each close waits for its PUT.
		seqPut, err := timed([]string{tree}, func() error { return rawSequentialPuts(ctx, b.client, tree, "raw-tree/") })
		if err != nil {
			return err
		}
		b.rows = append(b.rows, row{workload: "PutObject of each file of the tree, one after another", tool: "raw SDK", seconds: seqPut})
	}
	tools := []tool{s3drive}
	if slices.Contains(only, s3driveWriteBack.name) {
		tools = append(tools, s3driveWriteBack)
	}
	for _, t := range peers {
		if !slices.Contains(only, t.name) {
			continue
		}
		if _, err := exec.LookPath(t.name); err == nil {
			tools = append(tools, t)
		} else {
			fmt.Fprintf(os.Stderr, "bench: %s not installed; skipped\n", t.name)
		}
	}
	for _, t := range tools {
		var err error
		if size > 0 && !t.treesOnly {
			err = b.repeat(runs, func(run int) error { return b.largeFile(t, src, size, raw, run) })
		}
		if err == nil && tree != "" {
			err = b.trees(ctx, t, tree)
		}
		if err != nil {
			// A peer's failure is a result too; s3drive's is not.
			if t.ours() {
				return err
			}
			fmt.Fprintf(os.Stderr, "bench: %s failed: %v\n", t.name, err)
			b.rows = append(b.rows, row{workload: "(remaining workloads)", tool: t.name, note: "failed: " + firstLine(err.Error())})
		}
	}
	if rssSize > 0 {
		if err := b.peakRSS(rssSize); err != nil {
			return err
		}
	}
	if err := b.folders(ctx, tools, folders); err != nil {
		return err
	}
	b.print(size, latency)
	return nil
}

// baseline is the raw SDK's times on the large file.
type baseline struct{ write, read float64 }

func (b *bench) rawBaseline(ctx context.Context, src string, size int64, runs int) (baseline, error) {
	object := b.objectPath("raw/big.bin")
	step := func(workload string, warm string, fn func() error) error {
		secs, err := timed([]string{warm}, fn)
		if err != nil {
			return fmt.Errorf("raw %s: %w", workload, err)
		}
		b.rows = append(b.rows, row{workload: workload, tool: "raw SDK", seconds: secs})
		return nil
	}
	err := b.repeat(runs, func(int) error {
		if err := step("multipart upload (16 MiB parts, 8 in flight), payload signed", src, func() error {
			return rawMultipartUpload(ctx, b.client, "raw/big.bin", src, size)
		}); err != nil {
			return err
		}
		// The baseline: the same requests s3drive sends to a loopback
		// endpoint, whose bodies SigV4 does not hash.
		if err := step("multipart upload (16 MiB parts, 8 in flight), payload unsigned", src, func() error {
			return rawMultipartUpload(ctx, b.client, "raw/big.bin", src, size, unsignedPayload)
		}); err != nil {
			return err
		}
		if err := step("GetObject", object, func() error { return rawGet(ctx, b.client, "raw/big.bin") }); err != nil {
			return err
		}
		return step("ranged GETs (16 MiB, 8 in flight)", object, func() error { return rawRangedGet(ctx, b.client, "raw/big.bin", size) })
	})
	if err != nil {
		return baseline{}, err
	}
	n := len(b.rows) // rows: signed upload, unsigned upload, GetObject, ranged GETs
	return baseline{write: b.rows[n-3].seconds, read: min(b.rows[n-2].seconds, b.rows[n-1].seconds)}, nil
}

// repeat runs fn runs times and keeps, of the rows each run added, the
// median run's row per workload: this machine's disk makes single timings
// vary severalfold.
func (b *bench) repeat(runs int, fn func(run int) error) error {
	start := len(b.rows)
	for run := range runs {
		if err := fn(run); err != nil {
			return err
		}
	}
	byWorkload := map[string][]row{}
	var order []string
	for _, r := range b.rows[start:] {
		if byWorkload[r.workload] == nil {
			order = append(order, r.workload)
		}
		byWorkload[r.workload] = append(byWorkload[r.workload], r)
	}
	b.rows = b.rows[:start]
	for _, w := range order {
		rs := byWorkload[w]
		slices.SortFunc(rs, func(x, y row) int { return cmp.Compare(x.seconds, y.seconds) })
		median := rs[len(rs)/2]
		if len(rs) > 1 {
			median.note = strings.TrimPrefix(fmt.Sprintf("%s; median of %d (%.2f–%.2f s)", median.note, len(rs), rs[0].seconds, rs[len(rs)-1].seconds), "; ")
		}
		b.rows = append(b.rows, median)
	}
	return nil
}

// largeFile: write then fsync, cold read, re-read after a remount; each
// run with its own, empty caches.
func (b *bench) largeFile(t tool, src string, size int64, raw baseline, run int) error {
	mb := fmt.Sprintf("%d MiB", size/mib)
	cacheDir := filepath.Join(b.work, fmt.Sprintf("%s-cache-large-%d", t.name, run))
	m, err := b.mount(t, cacheDir)
	if err != nil {
		return err
	}
	note := ""
	if !t.durable {
		note = "returns before the data is in S3: not comparable"
	}
	start := time.Now()
	if err := b.measure(m, "write "+mb+" read-write (os.Create), then fsync", raw.write, note, []string{src}, func() error {
		return copyFile(src, m.path("big.bin"))
	}); err != nil {
		return err
	}
	if err := b.landed(t, "big.bin", 1, start); err != nil {
		return err
	}
	// As cp, dd, rsync and tar write: a write-only descriptor (copyFile's
	// os.Create opens read-write).
	start = time.Now()
	if err := b.measure(m, "write "+mb+" write-only (dd), then fsync", raw.write, note, []string{src}, func() error {
		return runQuiet("dd", "if="+src, "of="+m.path("dd.bin"), "bs=1M", "conv=fsync", "status=none")
	}); err != nil {
		return err
	}
	if err := b.landed(t, "dd.bin", 1, start); err != nil {
		return err
	}
	m.unmount()

	// A new cache: nothing of the file is local.
	cold := filepath.Join(b.work, fmt.Sprintf("%s-cache-cold-%d", t.name, run))
	if m, err = b.mount(t, cold); err != nil {
		return err
	}
	if err := b.measure(m, "read "+mb+", cold", raw.read, "", []string{b.objectPath(t.prefix() + "/big.bin")},
		func() error { return readFile(m.path("big.bin")) }); err != nil {
		return err
	}
	m.unmount()

	// The same cache after a remount: what the mount read is local now.
	// Twice: with the local copies in the page cache (the cache's files
	// for the mount, the source for the raw), and from the disk.
	if m, err = b.mount(t, cold); err != nil {
		return err
	}
	for _, from := range []struct {
		how        string
		mine, raws []string
	}{{"page cache", []string{cold}, []string{src}}, {"disk", nil, nil}} {
		local, err := timed(from.raws, func() error { return readFile(src) })
		if err != nil {
			return err
		}
		label := fmt.Sprintf("re-read %s after a remount, from the %s", mb, from.how)
		if err := b.measure(m, label, local, "raw = reading the local file", from.mine,
			func() error { return readFile(m.path("big.bin")) }); err != nil {
			return err
		}
	}
	m.unmount()
	return nil
}

// trees: cp -r, ls -lR after a remount, ls -lR of a tree another client
// wrote, rsync -a, mv, rm -rf.
func (b *bench) trees(ctx context.Context, t tool, tree string) error {
	files, dirs, err := countTree(tree)
	if err != nil {
		return err
	}
	cacheDir := filepath.Join(b.work, t.name+"-cache-tree")
	m, err := b.mount(t, cacheDir)
	if err != nil {
		return err
	}
	early := "" // the note of a row that returns before the data is in S3
	if !t.durable {
		early = fmt.Sprintf("returns before the data is in S3 (%s)", t.returnsAt())
	}
	start := time.Now()
	if err := b.measure(m, fmt.Sprintf("cp -r %d files / %d dirs", files, dirs), 0, early, []string{tree}, func() error {
		return runThenSync(m.path("tree"), "cp", "-r", tree, m.path("tree"))
	}); err != nil {
		return err
	}
	if err := b.landed(t, "tree/", files, start); err != nil {
		return err
	}
	m.unmount()
	if m, err = b.mount(t, cacheDir); err != nil {
		return err
	}
	if err := b.measure(m, "ls -lR after a remount", 0, "", nil, func() error {
		return runQuiet("ls", "-lR", m.path("tree"))
	}); err != nil {
		return err
	}

	// Another client writes the same tree with the SDK.
	if err := rawUploadTree(ctx, b.client, tree, t.prefix()+"/foreign/"); err != nil {
		return err
	}
	other, err := b.mount(t, filepath.Join(b.work, t.name+"-cache-other"))
	if err != nil {
		return err
	}
	if err := b.measure(other, "ls -lR of a tree another client wrote", 0, "first sight", nil, func() error {
		return runQuiet("ls", "-lR", other.path("foreign"))
	}); err != nil {
		return err
	}
	other.unmount()

	if _, err := exec.LookPath("rsync"); err == nil {
		start := time.Now()
		if err := b.measure(m, "rsync -a (initial)", 0, early, []string{tree}, func() error {
			return runThenSync(m.path("rsync"), "rsync", "-a", tree+"/", m.path("rsync")+"/")
		}); err != nil {
			return err
		}
		if err := b.landed(t, "rsync/", files, start); err != nil {
			return err
		}
		if err := b.measure(m, "rsync -a (again, unchanged)", 0, "", []string{tree}, func() error {
			return runThenSync(m.path("rsync"), "rsync", "-a", tree+"/", m.path("rsync")+"/")
		}); err != nil {
			return err
		}
	}
	if err := b.measure(m, "mv of the tree", 0, "", nil, func() error {
		return runThenSync(m.path("moved"), "mv", m.path("tree"), m.path("moved"))
	}); err != nil {
		return err
	}
	if err := b.measure(m, "rm -rf of the tree", 0, "", nil, func() error {
		return runThenSync(m.dir, "rm", "-rf", m.path("moved"))
	}); err != nil {
		return err
	}
	m.unmount()
	return nil
}

// landed waits, for a tool that returns before the data is in S3, until
// n objects under name are there, and notes when that was in the last row.
func (b *bench) landed(t tool, name string, n int, start time.Time) error {
	if t.durable {
		return nil
	}
	if err := b.waitObjects(t.prefix()+"/"+name, n, start); err != nil {
		return err
	}
	b.rows[len(b.rows)-1].note += fmt.Sprintf("; in S3 after %.2f s", time.Since(start).Seconds())
	return nil
}

// waitObjects polls S3 (nothing else can tell) until at least n objects
// written since since exist under prefix: a tool that uploads after close
// has finished. Objects of earlier runs under the same names do not count.
func (b *bench) waitObjects(prefix string, n int, since time.Time) error {
	since = since.Truncate(time.Second) // LastModified's resolution
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		count := 0
		p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
		for p.HasMorePages() {
			page, err := p.NextPage(context.Background())
			if err != nil {
				return err
			}
			for _, o := range page.Contents {
				if !strings.HasSuffix(aws.ToString(o.Key), "/") && !aws.ToTime(o.LastModified).Before(since) {
					count++
				}
			}
		}
		if count >= n {
			return nil
		}
	}
	return fmt.Errorf("%s: fewer than %d objects in S3 after 10 minutes", prefix, n)
}

// peakRSS writes and reads back a file of size through a fresh s3drive
// mount and reports the mount's high-water resident set.
func (b *bench) peakRSS(size int64) error {
	m, err := b.mount(s3drive, filepath.Join(b.work, "s3drive-cache-rss"))
	if err != nil {
		return err
	}
	defer m.unmount()
	label := fmt.Sprintf("write + read %d MiB (peak RSS)", size/mib)
	return b.measure(m, label, 0, "", nil, func() error {
		f, err := os.Create(m.path("rss.bin"))
		if err != nil {
			return err
		}
		if _, err := io.CopyBuffer(struct{ io.Writer }{f}, io.LimitReader(rand.NewChaCha8([32]byte{1}), size), make([]byte, mib)); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return readFile(m.path("rss.bin"))
	})
}

// measure runs fn on m and records its time and, for s3drive, the S3
// requests it cost.
func (b *bench) measure(m *mount, workload string, raw float64, note string, warm []string, fn func() error) error {
	before, err := m.counters()
	if err != nil {
		return err
	}
	secs, err := timed(warm, fn)
	if err != nil {
		return fmt.Errorf("%s: %w", workload, err)
	}
	after, err := m.counters()
	if err != nil {
		return err
	}
	var delta map[string]int64
	if after != nil {
		delta = map[string]int64{}
		for op, n := range after {
			if d := n - before[op]; d != 0 {
				delta[op] = d
			}
		}
	}
	if strings.Contains(workload, "peak RSS") {
		note = fmt.Sprintf("peak RSS %d MiB", m.peakRSS()/mib)
	}
	fmt.Fprintf(os.Stderr, "bench: %-8s %-42s %7.2f s\n", m.tool.name, workload, secs)
	b.rows = append(b.rows, row{workload: workload, tool: m.tool.name, seconds: secs, raw: raw, requests: delta, note: note})
	return nil
}

func (b *bench) print(size int64, latency time.Duration) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "workload\ttool\tseconds\tvs raw\tS3 requests\tnote")
	for _, r := range b.rows {
		ratio := ""
		if r.raw > 0 {
			ratio = fmt.Sprintf("%.2f×", r.seconds/r.raw)
		}
		fmt.Fprintf(w, "%s\t%s\t%.2f\t%s\t%s\t%s\n", r.workload, r.tool, r.seconds, ratio, formatRequests(r.requests), r.note)
	}
	w.Flush()
	where := "on loopback"
	if latency > 0 {
		where = fmt.Sprintf("on loopback behind %v each way", latency)
	}
	fmt.Printf("\n%d cores, %s, versitygw posix %s, large file %d MiB\n", runtime.NumCPU(), runtime.Version(), where, size/mib)
}

func formatRequests(c map[string]int64) string {
	if c == nil {
		return "n/a"
	}
	if len(c) == 0 {
		return "0"
	}
	ops := make([]string, 0, len(c))
	var total int64
	for op, n := range c {
		ops = append(ops, op)
		total += n
	}
	sort.Strings(ops)
	var parts []string
	for _, op := range ops {
		parts = append(parts, fmt.Sprintf("%s %d", op, c[op]))
	}
	return fmt.Sprintf("%d: %s", total, strings.Join(parts, ", "))
}

func (t tool) prefix() string { return "drive-" + t.name }

// s3drive is mounted with passthrough, its fastest durable configuration.
var s3drive = tool{name: "s3drive", durable: true, start: startS3drive()}

// s3driveWriteBack is s3drive with --write-back: close returns once the
// data is durable on local disk. Only the tree workloads run it; its
// large-file rows end in fsync, which waits for S3 as without it.
var s3driveWriteBack = tool{name: "s3drive-writeback", treesOnly: true, start: startS3drive("--write-back")}

func startS3drive(flags ...string) func(b *bench, prefix, dir, cacheDir string) (*exec.Cmd, error) {
	return func(b *bench, prefix, dir, cacheDir string) (*exec.Cmd, error) {
		args := append([]string{"mount", "--endpoint", b.endpoint, "--cache-dir", cacheDir, "--passthrough"}, flags...)
		cmd := exec.Command(b.binary, append(args, "s3://"+bucket+"/"+prefix, dir)...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+s3server.AccessKey,
			"AWS_SECRET_ACCESS_KEY="+s3server.SecretKey, "AWS_REGION=us-east-1",
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true")
		return cmd, cmd.Start()
	}
}

// returnsAt says where a tool that is not durable holds data when close
// returns.
func (t tool) returnsAt() string {
	if t.ours() {
		return "synced to local disk and journaled"
	}
	return "in its local cache only"
}

// ours reports whether the tool is s3drive, in any configuration.
func (t tool) ours() bool { return strings.HasPrefix(t.name, s3drive.name) }

// peers run when installed, with the options their documentation gives
// for an S3-compatible endpoint.
var peers = []tool{
	{name: "s3fs", durable: true, start: func(b *bench, prefix, dir, cacheDir string) (*exec.Cmd, error) {
		passwd := filepath.Join(b.work, "s3fs-passwd")
		if err := os.WriteFile(passwd, []byte(s3server.AccessKey+":"+s3server.SecretKey+"\n"), 0o600); err != nil {
			return nil, err
		}
		cmd := exec.Command("s3fs", bucket+":/"+prefix, dir, "-f", "-o", "url="+b.endpoint,
			"-o", "use_path_request_style", "-o", "passwd_file="+passwd, "-o", "nonempty")
		return cmd, cmd.Start()
	}},
	{name: "rclone", durable: false, start: func(b *bench, prefix, dir, cacheDir string) (*exec.Cmd, error) {
		cmd := exec.Command("rclone", "mount", ":s3:"+bucket+"/"+prefix, dir,
			"--s3-provider", "Other", "--s3-endpoint", b.endpoint, "--s3-force-path-style",
			"--s3-access-key-id", s3server.AccessKey, "--s3-secret-access-key", s3server.SecretKey,
			"--vfs-cache-mode", "writes", "--cache-dir", cacheDir)
		// rclone's transport rejects a custom CA bundle even for http.
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "AWS_CA_BUNDLE=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		return cmd, cmd.Start()
	}},
}

// mount is one running filesystem.
type mount struct {
	tool tool
	dir  string
	cmd  *exec.Cmd
	done chan error
}

func (b *bench) mount(t tool, cacheDir string) (*mount, error) {
	return b.mountAt(t, t.prefix(), cacheDir)
}

// mountAt mounts the folder prefix of the bucket.
func (b *bench) mountAt(t tool, prefix, cacheDir string) (*mount, error) {
	dir, err := os.MkdirTemp(b.work, "mnt-")
	if err != nil {
		return nil, err
	}
	cmd, err := t.start(b, prefix, dir, cacheDir)
	if err != nil {
		return nil, err
	}
	m := &mount{tool: t, dir: dir, cmd: cmd, done: make(chan error, 1)}
	b.mounts = append(b.mounts, m)
	go func() { m.done <- cmd.Wait() }()
	for deadline := time.Now().Add(time.Minute); !mounted(dir); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-m.done:
			return nil, fmt.Errorf("%s exited before mounting: %v", t.name, err)
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return nil, fmt.Errorf("%s did not mount within a minute", t.name)
		}
	}
	return m, nil
}

// mounted reports whether dir is a mount point (polled: nothing tells us).
func mounted(dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

func (m *mount) path(p string) string { return filepath.Join(m.dir, p) }

// objectPath is where versitygw's posix backend keeps key's bytes.
func (b *bench) objectPath(key string) string {
	return filepath.Join(b.work, "s3", "data", bucket, filepath.FromSlash(key))
}

// counters reads s3drive's request counters; other tools have none (nil).
func (m *mount) counters() (map[string]int64, error) {
	if !m.tool.ours() {
		return nil, nil
	}
	buf := make([]byte, 4096)
	n, err := unix.Getxattr(m.dir, "user.s3drive.stats", buf)
	if err != nil {
		return nil, fmt.Errorf("reading request counters: %w", err)
	}
	c := map[string]int64{}
	return c, json.Unmarshal(buf[:n], &c)
}

// peakRSS is the process's resident high-water mark (VmHWM), in bytes.
func (m *mount) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", m.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// unmount: s3drive flushes and leaves on SIGTERM; the others on umount
// (retried while busy with uploads, then detached).
func (m *mount) unmount() {
	if m.tool.ours() {
		m.cmd.Process.Signal(unix.SIGTERM)
	} else {
		for i := 0; exec.Command("umount", m.dir).Run() != nil; i++ {
			if i == 100 {
				exec.Command("umount", "-l", m.dir).Run()
				break
			}
			time.Sleep(100 * time.Millisecond) // busy: nothing signals when it is not
		}
	}
	select {
	case <-m.done:
	case <-time.After(5 * time.Minute):
		m.cmd.Process.Kill()
		<-m.done
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// runThenSync runs a program, then fsyncs the folder dir as a program that
// needs its changes in S3 would: s3drive writes new folders' markers and
// sends queued removals up to a few seconds later unless asked, and that
// work belongs to the workload's time and requests.
func runThenSync(dir, name string, args ...string) error {
	if err := runQuiet(name, args...); err != nil {
		return err
	}
	return runQuiet("sync", dir)
}

// runQuiet runs a program, returning its output with the error.
func runQuiet(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", name, err, out)
	}
	return nil
}

// timed runs fn from the same state every time: dirty pages written back
// (no step pays for the disk writes of the one before it), the page cache
// emptied (a full one makes every new page cost a reclaim, which made
// single timings vary severalfold), and then the files or trees in warm
// read into it (the source a step copies, the object a server sends).
func timed(warm []string, fn func() error) (float64, error) {
	unix.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
		return 0, fmt.Errorf("emptying the page cache: %w", err)
	}
	for _, root := range warm {
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				err = readFile(p)
			}
			if p == root && errors.Is(err, os.ErrNotExist) {
				return nil // a cache directory the tool never made
			}
			return err
		})
		if err != nil {
			return 0, err
		}
	}
	start := time.Now()
	err := fn()
	return time.Since(start).Seconds(), err
}

func writeRandom(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, io.LimitReader(rand.NewChaCha8([32]byte{42}), size)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// copyFile copies src to dst in 1 MiB writes, with an fsync before close.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	// Hidden from io.CopyBuffer, *os.File's ReadFrom would copy in 32 KiB
	// writes once copy_file_range refuses to cross filesystems.
	if _, err := io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{in}, make([]byte, mib)); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// readFile reads path sequentially in 1 MiB reads.
func readFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, make([]byte, mib))
	return err
}

func countTree(root string) (files, dirs int, err error) {
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs++
		} else if d.Type().IsRegular() {
			files++
		}
		return nil
	})
	return files, dirs, err
}

// unsignedPayload makes a request's SigV4 signature leave its body out, as
// the SDK does on TLS and s3drive does to loopback endpoints.
var unsignedPayload = s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)

// rawMultipartUpload is the baseline upload: the SDK, 16 MiB parts, 8 in
// flight, read from the local file.
func rawMultipartUpload(ctx context.Context, c *s3.Client, key, path string, size int64, opts ...func(*s3.Options)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	created, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return err
	}
	nparts := int((size + partSize - 1) / partSize)
	parts := make([]types.CompletedPart, nparts)
	errs := make(chan error, nparts)
	slots := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	for i := range nparts {
		off := int64(i) * partSize
		n := min(partSize, size-off)
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key),
				UploadId: created.UploadId, PartNumber: aws.Int32(int32(i + 1)),
				Body: io.NewSectionReader(f, off, n), ContentLength: aws.Int64(n)}, opts...)
			if err != nil {
				errs <- err
				return
			}
			parts[i] = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1))}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key),
		UploadId: created.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	return err
}

func rawGet(ctx context.Context, c *s3.Client, key string) error {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return err
	}
	defer out.Body.Close()
	_, err = io.CopyBuffer(io.Discard, out.Body, make([]byte, mib))
	return err
}

// rawRangedGet reads key as 16 MiB ranges, 8 in flight.
func rawRangedGet(ctx context.Context, c *s3.Client, key string, size int64) error {
	slots := make(chan struct{}, inFlight)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for off := int64(0); off < size; off += partSize {
		end := min(off+partSize, size) - 1
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
				Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, end))})
			if err == nil {
				_, err = io.Copy(io.Discard, out.Body)
				out.Body.Close()
			}
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// rawUploadTree puts every file under root at prefix, 32 at a time, as
// another client would have (no s3drive metadata).
func rawUploadTree(ctx context.Context, c *s3.Client, root, prefix string) error {
	var paths []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			paths = append(paths, p)
		}
		return nil
	})
	slots := make(chan struct{}, 32)
	errs := make(chan error, len(paths))
	var wg sync.WaitGroup
	for _, p := range paths {
		rel, _ := filepath.Rel(root, p)
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			body, err := os.ReadFile(p)
			if err == nil {
				_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket),
					Key: aws.String(prefix + filepath.ToSlash(rel)), Body: bytes.NewReader(body)})
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// rawSequentialPuts uploads every file under root, one at a time.
func rawSequentialPuts(ctx context.Context, c *s3.Client, root, prefix string) error {
	return filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		body, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket),
			Key: aws.String(prefix + filepath.ToSlash(rel)), Body: bytes.NewReader(body)})
		return err
	})
}
