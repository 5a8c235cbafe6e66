package integration

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestVersionAndUsageExits: --version answers and exits 0; a word that is
// no command, like a bad flag, is a usage error (exit 2) that names it.
func TestVersionAndUsageExits(t *testing.T) {
	need(t)
	out, err := exec.Command(env.binary, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "s3drive ") || !strings.Contains(string(out), "go1.") {
		t.Errorf("s3drive --version: %v, %q; want exit 0 and a version line", err, out)
	}
	for _, args := range [][]string{{"nosuchcommand"}, {"mount", "--bogus"}, {"mount"}} {
		out, err := exec.Command(env.binary, args...).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Errorf("s3drive %v: %v, want exit status 2\n%s", args, err, out)
		}
	}
	if out, _ := exec.Command(env.binary, "nosuchcommand").CombinedOutput(); !strings.Contains(string(out), `"nosuchcommand"`) {
		t.Errorf("the usage error does not name the word: %q", out)
	}
}
