package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// logFlags are the mount's logging options.
type logFlags struct {
	format string // text or json
	level  string // debug, info, warn or error
	file   string // "" for standard error
}

// newLogger builds the mount's logger; debug (--debug) lowers the level to
// debug. The returned closer closes the log file, if any.
func newLogger(f logFlags, debug bool) (*slog.Logger, io.Closer, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.level)); err != nil {
		return nil, nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", f.level)}
	}
	if debug {
		level = slog.LevelDebug
	}
	var out io.Writer = os.Stderr
	var closer io.Closer = io.NopCloser(nil)
	if f.file != "" {
		file, err := os.OpenFile(f.file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("--log-file: %w", err)
		}
		out, closer = file, file
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(f.format) {
	case "text":
		return slog.New(slog.NewTextHandler(out, opts)), closer, nil
	case "json":
		return slog.New(slog.NewJSONHandler(out, opts)), closer, nil
	}
	closer.Close()
	return nil, nil, usageError{errors.New("--log-format " + f.format + ": want text or json")}
}
