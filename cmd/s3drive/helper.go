package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The mount helper: mount(8) and /etc/fstab run `s3drive SOURCE MOUNTPOINT
// -o OPTIONS` (through mount.fuse3, for the type fuse.s3drive) and expect
// it to return once the drive is mounted, leaving the daemon serving it.
// Every long flag of `s3drive mount` is an option (cache_dir=… or
// cache-dir=…), and the options mount(8), systemd and fuse add are
// accepted. The daemon tells the helper it serves through a pipe, whose
// descriptor it finds in readyFDEnv.

const readyFDEnv = "S3DRIVE_READY_FD"

// isHelperCall reports whether the arguments are the helper's form.
func isHelperCall(args []string) bool {
	return len(args) > 0 && strings.HasPrefix(args[0], "s3://")
}

// ignoredOptions are mount(8), systemd and fuse options that concern them,
// not the drive (nodev and nosuid hold for every FUSE mount anyway).
var ignoredOptions = map[string]bool{
	"defaults": true, "rw": true, "auto": true, "noauto": true, "user": true, "users": true, "nouser": true,
	"owner": true, "group": true, "_netdev": true, "nofail": true, "dev": true, "nodev": true, "suid": true,
	"nosuid": true, "exec": true, "noexec": true, "async": true, "atime": true, "noatime": true,
	"relatime": true, "norelatime": true, "strictatime": true, "diratime": true, "nodiratime": true,
	"lazytime": true, "silent": true, "loud": true, "fsname": true, "subtype": true, "comment": true,
}

// helperArgs turns the helper's arguments into the mount command's, or
// reports fake (-f: check the options, mount nothing).
func helperArgs(args []string, flags *pflag.FlagSet) (mountArgs []string, fake bool, err error) {
	var positional, opts []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-o":
			if i+1 == len(args) {
				return nil, false, errors.New("-o needs a list of options")
			}
			i++
			opts = append(opts, strings.Split(args[i], ",")...)
		case strings.HasPrefix(a, "-o"):
			opts = append(opts, strings.Split(a[2:], ",")...)
		case a == "-f":
			fake = true
		case a == "-n", a == "-s", a == "-v":
			// no mtab, sloppy, verbose: nothing to do
		case strings.HasPrefix(a, "-"):
			return nil, false, fmt.Errorf("unknown argument %q (use -o OPTIONS)", a)
		default:
			positional = append(positional, a)
		}
	}
	if len(positional) != 2 {
		return nil, false, fmt.Errorf("want s3://BUCKET[/PREFIX] MOUNTPOINT [-o OPTIONS], got %q", positional)
	}
	for _, o := range opts {
		name, value, hasValue := strings.Cut(strings.TrimSpace(o), "=")
		switch {
		case name == "":
			continue
		case ignoredOptions[name], strings.HasPrefix(name, "x-"):
			continue
		case name == "ro":
			name, hasValue = "read-only", false
		}
		flagName := strings.ReplaceAll(name, "_", "-")
		fl := flags.Lookup(flagName)
		if fl == nil || fl.Hidden {
			return nil, false, fmt.Errorf("unknown option %q (the options are the long flags of s3drive mount, e.g. endpoint=URL, cache_dir=DIR, ro, allow_other)", name)
		}
		switch {
		case hasValue:
			mountArgs = append(mountArgs, "--"+flagName+"="+value)
		case fl.Value.Type() == "bool":
			mountArgs = append(mountArgs, "--"+flagName)
		default:
			return nil, false, fmt.Errorf("option %s needs a value (%s=…)", name, name)
		}
	}
	return append(append([]string{"mount"}, mountArgs...), positional...), fake, nil
}

// runHelper mounts in a detached daemon and returns once it serves, or
// with its error.
func runHelper(args []string) error {
	mount := mountCmd()
	mountArgs, fake, err := helperArgs(args, mount.Flags())
	if err != nil {
		return usageError{err}
	}
	if err := mount.ParseFlags(mountArgs[1:]); err != nil {
		return usageError{err}
	}
	if fake {
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ready, signal, err := os.Pipe()
	if err != nil {
		return err
	}
	defer ready.Close()
	var output bytes.Buffer
	cmd := exec.Command(self, mountArgs...)
	cmd.Env = append(helperEnv(), readyFDEnv+"=3")
	cmd.ExtraFiles = []*os.File{signal}
	cmd.Stdout, cmd.Stderr = &output, &output
	// Its own session: the daemon outlives the shell and mount(8), and
	// their signals.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	signal.Close()
	msg, _ := io.ReadAll(ready) // until the daemon serves, or ends
	if string(msg) == "ready\n" {
		return nil
	}
	err = cmd.Wait()
	text := strings.TrimSpace(strings.TrimPrefix(output.String(), "s3drive: "))
	if text == "" {
		text = fmt.Sprintf("the mount ended before serving: %v", err)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == exitUsage {
		return usageError{errors.New(text)}
	}
	return errors.New(text)
}

// helperEnv is the daemon's environment. mount(8) run by systemd has no
// HOME, where the AWS SDK finds its shared config and profiles.
func helperEnv() []string {
	env := os.Environ()
	if os.Getenv("HOME") == "" {
		if u, err := user.Current(); err == nil {
			env = append(env, "HOME="+u.HomeDir)
		}
	}
	return env
}

// serving tells the helper that started this daemon that the drive
// serves, after pointing standard output and error away from the
// helper, which is about to exit (the log goes to --log-file, if set).
func serving() {
	fd := os.Getenv(readyFDEnv)
	if fd != "3" {
		return
	}
	os.Unsetenv(readyFDEnv)
	if null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0); err == nil {
		syscall.Dup2(int(null.Fd()), 1)
		syscall.Dup2(int(null.Fd()), 2)
		null.Close()
	}
	signal := os.NewFile(3, "ready")
	signal.WriteString("ready\n")
	signal.Close()
}

// helperUsage documents the helper form in s3drive --help.
func addHelperHelp(root *cobra.Command) {
	root.Long = `Mount an S3 bucket or folder as a local drive.

As a mount helper (mount -t fuse.s3drive, /etc/fstab):
  s3drive s3://BUCKET[/PREFIX] MOUNTPOINT -o endpoint=URL,cache_dir=DIR,ro,allow_other,...
mounts in the background and returns once the drive serves. Every long
flag of "s3drive mount" is an option; defaults, rw, _netdev, nofail,
noauto, x-systemd.* and the like are accepted.`
}
