package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// version describes this build from what the go command recorded in it:
// the module version ("(devel)" for a build from a checkout) and the VCS
// revision, its time and whether the tree had uncommitted changes.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (built without module information)"
	}
	parts := []string{info.Main.Version}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		parts = append(parts, "revision "+rev[:min(12, len(rev))])
		if t := settings["vcs.time"]; t != "" {
			parts = append(parts, t)
		}
		if settings["vcs.modified"] == "true" {
			parts = append(parts, "with uncommitted changes")
		}
	}
	return fmt.Sprintf("%s, %s", strings.Join(parts, " "), info.GoVersion)
}
