package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The stress test: several processes work on their own names across
// shared folders of one mount, through a proxy that injects faults for the
// middle half of the run and refuses connections for a tenth of it, each
// recording what its successful calls imply.
// Afterwards the mount, a fresh mount and S3 must all equal that record.
// S3DRIVE_STRESS_PROCS, _DURATION and _SEED override the CI-sized defaults
// (the run: 16 processes, 60s).
const (
	stressWorkerEnv = "S3DRIVE_STRESS_WORKER" // set in a worker process: its JSON config
	stressFolders   = 4
)

// stressConfig is what a worker is told.
type stressConfig struct {
	ID       int
	Seed     uint64
	Root     string // the mount
	Deadline time.Time
	Out      string // where to write its record
}

// stressEntry is what a worker expects at a path.
type stressEntry struct {
	Dir  bool
	Hash string // hex SHA-256 of the content
	Mode uint32 // permission bits
}

// stressRecord is a worker's result.
type stressRecord struct {
	Entries map[string]stressEntry // relative to the mount
	// Uncertain paths: a call on them failed with EIO (a fault), so what
	// S3 holds there is either state; they are not compared.
	Uncertain  []string
	Unexpected []string // failures that must not happen, such as ENOENT on a worker's own name
	Ops        map[string]int
	EIO        int
	Log        []string // a line per step: when, what, on which paths, and how it ended
}

func TestStressModel(t *testing.T) {
	need(t)
	freshClient(t)
	procs := envInt(t, "S3DRIVE_STRESS_PROCS", 8)
	duration := 10 * time.Second
	if v := os.Getenv("S3DRIVE_STRESS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("S3DRIVE_STRESS_DURATION: %v", err)
		}
		duration = d
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("S3DRIVE_STRESS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("S3DRIVE_STRESS_SEED: %v", err)
		}
		seed = s
	}
	t.Logf("seed %d (S3DRIVE_STRESS_SEED=%d reproduces the choices), %d processes, %v", seed, seed, procs, duration)
	defer func() {
		if t.Failed() {
			t.Logf("FAILED with seed %d: rerun with S3DRIVE_STRESS_SEED=%d S3DRIVE_STRESS_PROCS=%d S3DRIVE_STRESS_DURATION=%v",
				seed, seed, procs, duration)
		}
	}()

	proxy := startFaultProxy(t, env.endpoint, seed)
	proxy.startTrace()
	// A short timeout, so that the outage fails calls instead of being
	// waited out; listing pages of 3 keys, so that readdirs stream pages
	// and lookups are answered from listings on their way; and a budget
	// of 8 inodes, so that the kernel keeps being told to forget them.
	// Odd seeds run with --write-back: closes return before the upload,
	// which the background queue, the retries and unmount's drain finish.
	flags := []string{"--timeout", "2s", "--list-page-size", "3", "--max-inodes", "8"}
	if seed%2 == 1 {
		flags = append(flags, "--write-back")
	}
	t.Logf("mount flags %v", flags)
	m := startMountVia(t, proxy.URL, "", flags...)
	defer func() {
		if t.Failed() {
			t.Logf("the mount's log:\n%s", m.stderr.String())
		}
	}()
	for i := range stressFolders {
		if err := os.Mkdir(m.path(fmt.Sprintf("d%d", i)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Faults for the middle half of the run.
	faultsOn := time.AfterFunc(duration/4, func() { proxy.on.Store(true) })
	faultsOff := time.AfterFunc(duration*3/4, func() { proxy.on.Store(false) })
	defer faultsOn.Stop()
	defer faultsOff.Stop()
	// And a short outage in the middle: calls wait, fail with EIO, or are
	// answered from what the mount holds; failed uploads retry behind.
	outage := time.AfterFunc(duration/2, func() {
		proxy.setMode("refuse")
		time.AfterFunc(duration/10, func() { proxy.setMode("pass") })
	})
	defer outage.Stop()

	deadline := time.Now().Add(duration)
	work := t.TempDir()
	cmds := make([]*exec.Cmd, procs)
	for i := range procs {
		cfg := stressConfig{ID: i, Seed: seed + uint64(i), Root: m.dir, Deadline: deadline,
			Out: filepath.Join(work, fmt.Sprintf("w%d.json", i))}
		b, _ := json.Marshal(cfg)
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), stressWorkerEnv+"="+string(b))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("worker %d: %v", i, err)
		}
	}
	proxy.on.Store(false)
	slow, before, after := proxy.counts()
	t.Logf("faults injected: %d SlowDown, %d resets before the server, %d after", slow, before, after)

	want := map[string]stressEntry{}
	uncertain := map[string]bool{}
	ops := map[string]int{}
	eio := 0
	var steps []string
	for i := range procs {
		var rec stressRecord
		b, err := os.ReadFile(filepath.Join(work, fmt.Sprintf("w%d.json", i)))
		if err != nil {
			t.Fatalf("worker %d left no record: %v", i, err)
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatal(err)
		}
		for _, u := range rec.Unexpected {
			t.Errorf("worker %d: %s", i, u)
		}
		for p, e := range rec.Entries {
			want[p] = e
		}
		for _, p := range rec.Uncertain {
			uncertain[p] = true
		}
		for k, v := range rec.Ops {
			ops[k] += v
		}
		eio += rec.EIO
		steps = append(steps, rec.Log...)
	}
	for i := range stressFolders {
		want[fmt.Sprintf("d%d", i)] = stressEntry{Dir: true, Mode: 0o755}
	}
	t.Logf("calls that succeeded: %v; EIO (under faults): %d; %d names uncertain; %d expected",
		ops, eio, len(uncertain), len(want))

	run(t, "sync", m.dir)
	differ := compareTree(t, "the mount", m.dir, want, uncertain)
	m.unmount()
	fresh := startMount(t, "")
	differ = append(differ, compareTree(t, "a fresh mount", fresh.dir, want, uncertain)...)
	differ = append(differ, compareS3(t, want, uncertain)...)
	explainStress(t, differ, append(steps, proxy.traceLines()...))
}

// conflictedRE splits a conflicted copy's name around its suffix.
var conflictedRE = regexp.MustCompile(`^(.*) \(conflicted copy [^)]*\)(.*)$`)

// explainStress logs, for each name that differs, the workers' steps and
// the requests that touched it, in time order: the name's own, and those
// of the names the file had before it was renamed there.
func explainStress(t *testing.T, names, lines []string) {
	t.Helper()
	slices.Sort(lines) // each line begins with its time of day
	slices.Sort(names)
	renamedFrom := map[string][]string{}
	renameRE := regexp.MustCompile(` w[0-9]+ rename (\S+) (\S+): ok$`)
	for _, l := range lines {
		if m := renameRE.FindStringSubmatch(l); m != nil {
			renamedFrom[m[2]] = append(renamedFrom[m[2]], m[1])
		}
	}
	for _, name := range slices.Compact(names) {
		// The name itself or a path inside it, not a longer name; and
		// the names it came from.
		var alts []string
		seen := map[string]bool{}
		todo := []string{name}
		if m := conflictedRE.FindStringSubmatch(name); m != nil {
			todo = append(todo, m[1]+m[2]) // the name whose data it holds
		}
		for ; len(todo) > 0; todo = todo[1:] {
			if n := todo[0]; !seen[n] {
				seen[n] = true
				alts = append(alts, regexp.QuoteMeta(n))
				todo = append(todo, renamedFrom[n]...)
			}
		}
		re := regexp.MustCompile(`[ /](` + strings.Join(alts, "|") + `)([^A-Za-z0-9-]|$)`)
		var about []string
		for _, l := range lines {
			if re.MatchString(l) {
				about = append(about, l)
			}
		}
		if len(about) > 400 {
			about = append(about[:200:200], append([]string{"..."}, about[len(about)-200:]...)...)
		}
		t.Logf("what happened to %s (and the names it had before, or whose copy it is):\n%s", name, strings.Join(about, "\n"))
	}
}

// compareTree walks root and checks it against the record.
// It returns the names that differ.
func compareTree(t *testing.T, what, root string, want map[string]stressEntry, uncertain map[string]bool) []string {
	t.Helper()
	got := map[string]stressEntry{}
	var failed []string // names that could not be read: every name must be, uncertain or not
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := stressEntry{Dir: d.IsDir(), Mode: uint32(info.Mode().Perm())}
		if !e.Dir {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Errorf("%s: reading %s: %v", what, rel, err)
				failed = append(failed, rel)
			}
			e.Hash = hashOf(b)
		}
		got[rel] = e
		return nil
	})
	if err != nil {
		t.Errorf("walking %s: %v", what, err)
		return failed
	}
	return append(failed, diffRecord(t, what, got, want, uncertain)...)
}

func diffRecord(t *testing.T, what string, got, want map[string]stressEntry, uncertain map[string]bool) []string {
	t.Helper()
	var missing, extra, wrong, names []string
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			missing = append(missing, p)
			names = append(names, p)
		case g != w:
			wrong = append(wrong, fmt.Sprintf("%s: %+v, want %+v", p, g, w))
			names = append(names, p)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok && !uncertain[p] && !underUncertain(p, uncertain) {
			extra = append(extra, p)
			names = append(names, p)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	slices.Sort(wrong)
	if len(missing)+len(extra)+len(wrong) > 0 {
		t.Errorf("%s differs from the writers' record: %d missing %v, %d extra %v, %d wrong %v",
			what, len(missing), missing, len(extra), extra, len(wrong), wrong)
	}
	return names
}

// underUncertain: p is inside a folder whose fate is uncertain.
func underUncertain(p string, uncertain map[string]bool) bool {
	for d := filepath.Dir(p); d != "." && d != "/"; d = filepath.Dir(d) {
		if uncertain[d] {
			return true
		}
	}
	return false
}

// compareS3 checks the objects in S3: files by content, folders by marker.
func compareS3(t *testing.T, want map[string]stressEntry, uncertain map[string]bool) []string {
	t.Helper()
	got := map[string]stressEntry{}
	for _, k := range listKeys(t, "") {
		if dir, ok := strings.CutSuffix(k, "/"); ok {
			got[dir] = stressEntry{Dir: true}
			continue
		}
		got[k] = stressEntry{Hash: hashOf([]byte(getObject(t, k)))}
	}
	bare := map[string]stressEntry{}
	for p, e := range want {
		e.Mode = 0 // modes are checked through the fresh mount, which reads them from S3
		bare[p] = e
	}
	return diffRecord(t, "S3", got, bare, uncertain)
}

func hashOf(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}
