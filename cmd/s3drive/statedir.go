package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/s3drive/s3drive/fs/journal"
	"github.com/s3drive/s3drive/s3backend"
)

// stateSource is what a state directory under --cache-dir belongs to,
// kept in it as source.json so that other mounts can name it.
type stateSource struct {
	Endpoint string `json:"endpoint"`
	Source   string `json:"source"` // s3://bucket[/prefix]
}

func writeStateSource(stateDir string, s stateSource) error {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return err
	}
	b, _ := json.Marshal(s)
	return os.WriteFile(filepath.Join(stateDir, "source.json"), b, 0o600)
}

// warnOtherPending logs, for every other state directory in cacheDir whose
// journal (not in use by a running mount) lists data a close asked for
// and S3 does not have, how to finish it: that data is uploaded only by a
// mount of the same endpoint, bucket and prefix, which a different
// --endpoint (a proxy, localhost for 127.0.0.1) is not.
func warnOtherPending(cacheDir, stateDir string, log *slog.Logger) {
	dirs, _ := filepath.Glob(filepath.Join(cacheDir, "*", "journal.db"))
	for _, path := range dirs {
		dir := filepath.Dir(path)
		if dir == stateDir {
			continue
		}
		j, err := journal.Open(path, "")
		if err != nil {
			continue // in use by a running mount, or unreadable
		}
		entries, _ := j.Entries()
		j.Close()
		pending := 0
		for _, e := range entries {
			if e.Closed && !e.Clean {
				pending++
			}
		}
		if pending == 0 {
			continue
		}
		var src stateSource
		if b, err := os.ReadFile(filepath.Join(dir, "source.json")); err == nil {
			json.Unmarshal(b, &src)
		}
		log.Warn("the cache dir holds files another mount could not upload; mount that source again with the same --endpoint to finish them",
			"files", pending, "source", src.Source, "endpoint", src.Endpoint, "state", dir)
	}
}

// conditionSupport is what the server does with conditional writes: found
// by a probe at the first writable mount of a state directory, and kept in
// it (conditions.json) so later mounts send nothing to learn it again.
// probed says the answer is new (not read from the file).
func conditionSupport(ctx context.Context, stateDir string, be *s3backend.S3, log *slog.Logger) (sup s3backend.ConditionSupport, probed bool) {
	path := filepath.Join(stateDir, "conditions.json")
	if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &sup) == nil {
		return sup, false
	}
	sup, err := be.ProbeConditions(ctx)
	if err != nil {
		// No write here (read-only credentials): nothing to condition.
		log.Debug("conditional writes not probed", "err", err)
		return s3backend.ConditionSupport{Put: true, Copy: true}, false
	}
	b, _ := json.Marshal(sup)
	os.WriteFile(path, b, 0o600)
	return sup, true
}
