package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The stress test's worker processes: each works on its own names in the
// shared folders and records what its successful calls imply.

// stressWorker runs in a worker process (see TestMain) and returns its
// exit code.
func stressWorker(config string) int {
	var cfg stressConfig
	if err := json.Unmarshal([]byte(config), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "stress worker:", err)
		return 2
	}
	syscall.Umask(0)
	w := &worker{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.ID))),
		files: map[string]*wfile{}, dirs: map[string]bool{},
		rec: stressRecord{Entries: map[string]stressEntry{}, Ops: map[string]int{}}}
	for time.Now().Before(cfg.Deadline) {
		w.step()
	}
	for p, f := range w.files {
		w.rec.Entries[p] = stressEntry{Hash: f.hash, Mode: f.mode}
	}
	for d := range w.dirs {
		w.rec.Entries[d] = stressEntry{Dir: true, Mode: 0o755}
	}
	b, _ := json.Marshal(w.rec)
	if err := os.WriteFile(cfg.Out, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "stress worker:", err)
		return 2
	}
	return 0
}

// wfile is what a worker knows of one of its files.
type wfile struct {
	data []byte // nil for large files, which are only replaced whole
	hash string
	mode uint32
}

type worker struct {
	cfg   stressConfig
	rng   *rand.Rand
	files map[string]*wfile // by path relative to the mount
	dirs  map[string]bool   // its own subfolders
	next  int
	rec   stressRecord
	began time.Time // when the current step began
}

func (w *worker) abs(p string) string { return filepath.Join(w.cfg.Root, p) }

// newName is a fresh name of this worker's in a shared folder or in one of
// its subfolders.
func (w *worker) newName(prefix string) string {
	w.next++
	parent := fmt.Sprintf("d%d", w.rng.IntN(stressFolders))
	if dirs := w.sortedDirs(); len(dirs) > 0 && w.rng.IntN(3) == 0 {
		parent = dirs[w.rng.IntN(len(dirs))]
	}
	return filepath.Join(parent, fmt.Sprintf("w%d-%s%d", w.cfg.ID, prefix, w.next))
}

func (w *worker) sortedDirs() []string {
	dirs := make([]string, 0, len(w.dirs))
	for d := range w.dirs {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	return dirs
}

func (w *worker) pickFile(small bool) (string, *wfile) {
	paths := make([]string, 0, len(w.files))
	for p, f := range w.files {
		if !small || f.data != nil {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		return "", nil
	}
	slices.Sort(paths)
	p := paths[w.rng.IntN(len(paths))]
	return p, w.files[p]
}

// done records the outcome of a call on the worker's own paths: on EIO
// they become uncertain and are dropped from the record; any other
// failure is unexpected.
func (w *worker) done(op string, err error, paths ...string) bool {
	w.logStep(op, err, paths...)
	if err == nil {
		w.rec.Ops[op]++
		return true
	}
	if errors.Is(err, syscall.EIO) {
		w.rec.EIO++
		// As a program would, it waits a little before going on, rather
		// than turning the whole outage into uncertain names.
		time.Sleep(200 * time.Millisecond)
		for _, p := range paths {
			w.rec.Uncertain = append(w.rec.Uncertain, p)
			delete(w.files, p)
			delete(w.dirs, p)
		}
		return false
	}
	w.rec.Unexpected = append(w.rec.Unexpected, fmt.Sprintf("%s %v: %v", op, paths, err))
	for _, p := range paths {
		w.rec.Uncertain = append(w.rec.Uncertain, p)
		delete(w.files, p)
		delete(w.dirs, p)
	}
	return false
}

// logStep adds a step to the worker's log, which a failed run prints for
// the names that differ.
func (w *worker) logStep(op string, err error, paths ...string) {
	result := "ok"
	if err != nil {
		result = err.Error()
	}
	w.rec.Log = append(w.rec.Log, fmt.Sprintf("%s..%s w%d %s %s: %s", w.began.Format("15:04:05.000"),
		time.Now().Format("05.000"), w.cfg.ID, op, strings.Join(paths, " "), result))
}

func (w *worker) randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := w.rng.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func (w *worker) step() {
	w.began = time.Now()
	switch x := w.rng.IntN(100); {
	case x < 22:
		w.write(w.newName("f"), w.rng.IntN(64<<10))
	case x < 24:
		w.streamed(w.newName("big"))
	case x < 32:
		if p, _ := w.pickFile(true); p != "" {
			w.write(p, w.rng.IntN(64<<10)) // overwrite
		}
	case x < 40:
		w.appendTo()
	case x < 46:
		w.truncate()
	case x < 60:
		w.rename()
	case x < 70:
		if p, _ := w.pickFile(false); p != "" {
			if w.done("unlink", os.Remove(w.abs(p)), p) {
				delete(w.files, p)
			}
		}
	case x < 75:
		p := w.newName("s")
		if w.done("mkdir", os.Mkdir(w.abs(p), 0o755), p) {
			w.dirs[p] = true
		}
	case x < 79:
		w.rmdir()
	case x < 85:
		if p, f := w.pickFile(false); p != "" {
			mode := []uint32{0o600, 0o640, 0o644, 0o755}[w.rng.IntN(4)]
			if w.done("chmod", os.Chmod(w.abs(p), os.FileMode(mode)), p) {
				f.mode = mode
			}
		}
	case x < 93:
		w.peek()
	default:
		w.readBack()
	}
}

func (w *worker) write(p string, size int) {
	data := w.randomBytes(size)
	f, existed := w.files[p]
	if w.done("write", os.WriteFile(w.abs(p), data, 0o644), p) {
		if !existed {
			f = &wfile{mode: 0o644}
			w.files[p] = f
		}
		f.data, f.hash = data, hashOf(data)
	}
}

// streamed writes a file larger than a part, so it uploads while written.
func (w *worker) streamed(p string) {
	size := 16<<20 + w.rng.IntN(8<<20)
	h := sha256.New()
	f, err := os.Create(w.abs(p))
	if !w.done("create", err, p) {
		return
	}
	for left := size; left > 0 && err == nil; {
		chunk := w.randomBytes(min(left, 1<<20))
		h.Write(chunk)
		_, err = f.Write(chunk)
		left -= len(chunk)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if w.done("streamed write", err, p) {
		w.files[p] = &wfile{hash: hex.EncodeToString(h.Sum(nil)), mode: 0o666} // os.Create's, umask 0
	}
}

func (w *worker) appendTo() {
	p, f := w.pickFile(true)
	if p == "" {
		return
	}
	more := w.randomBytes(1 + w.rng.IntN(8<<10))
	fd, err := os.OpenFile(w.abs(p), os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		_, err = fd.Write(more)
		if cerr := fd.Close(); err == nil {
			err = cerr
		}
	}
	if w.done("append", err, p) {
		f.data = append(f.data, more...)
		f.hash = hashOf(f.data)
	}
}

func (w *worker) truncate() {
	p, f := w.pickFile(true)
	if p == "" {
		return
	}
	n := w.rng.IntN(len(f.data) + 4096)
	if w.done("truncate", os.Truncate(w.abs(p), int64(n)), p) {
		if n <= len(f.data) {
			f.data = f.data[:n]
		} else {
			f.data = append(f.data, make([]byte, n-len(f.data))...)
		}
		f.hash = hashOf(f.data)
	}
}

func (w *worker) rename() {
	p, f := w.pickFile(false)
	if p == "" {
		return
	}
	q := w.newName("r")
	if w.rng.IntN(3) == 0 {
		if other, _ := w.pickFile(false); other != "" && other != p {
			q = other // over another of its own files
		}
	}
	if w.done("rename", os.Rename(w.abs(p), w.abs(q)), p, q) {
		delete(w.files, p)
		w.files[q] = f
	}
}

func (w *worker) rmdir() {
	for _, d := range w.sortedDirs() {
		empty := true
		for p := range w.files {
			if strings.HasPrefix(p, d+"/") {
				empty = false
				break
			}
		}
		for sub := range w.dirs {
			if strings.HasPrefix(sub, d+"/") {
				empty = false
			}
		}
		for _, u := range w.rec.Uncertain {
			if strings.HasPrefix(u, d+"/") {
				empty = false
			}
		}
		if empty {
			if w.done("rmdir", os.Remove(w.abs(d)), d) {
				delete(w.dirs, d)
			}
			return
		}
	}
}

// peek opens someone else's file and closes it, as a file manager sniffing
// types does: anything may happen to it meanwhile, so errors are fine.
func (w *worker) peek() {
	dir := fmt.Sprintf("d%d", w.rng.IntN(stressFolders))
	entries, err := os.ReadDir(w.abs(dir))
	if err != nil {
		if errors.Is(err, syscall.EIO) {
			w.rec.EIO++
		} else {
			w.rec.Unexpected = append(w.rec.Unexpected, fmt.Sprintf("readdir %s: %v", dir, err))
		}
		return
	}
	var others []string
	for _, e := range entries {
		if !e.IsDir() && !strings.HasPrefix(e.Name(), fmt.Sprintf("w%d-", w.cfg.ID)) {
			others = append(others, e.Name())
		}
	}
	if len(others) == 0 {
		return
	}
	f, err := os.Open(w.abs(filepath.Join(dir, others[w.rng.IntN(len(others))])))
	if err != nil {
		return
	}
	io.ReadFull(f, make([]byte, 16))
	f.Close()
	w.logStep("peek", nil, f.Name()[len(w.cfg.Root)+1:])
	w.rec.Ops["peek"]++
}

// readBack reads one of its files and checks it.
func (w *worker) readBack() {
	p, f := w.pickFile(false)
	if p == "" {
		return
	}
	b, err := os.ReadFile(w.abs(p))
	if !w.done("read", err, p) {
		return
	}
	if hashOf(b) != f.hash {
		w.rec.Unexpected = append(w.rec.Unexpected, fmt.Sprintf("read %s: %d bytes not what was written", p, len(b)))
	}
}
