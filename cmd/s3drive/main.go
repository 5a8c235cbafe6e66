// Command s3drive mounts an S3 bucket, or one client's folder inside it,
// as a local drive. See README.md.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes, so scripts can tell a usage mistake from a mount failure.
const (
	exitOK       = 0
	exitFailure  = 1 // runtime failure: S3 or mount error
	exitUsage    = 2 // bad flags or arguments
	exitNotFlush = 3 // unmounted, but some data could not be uploaded
)

// usageError marks errors caused by the command line itself.
type usageError struct{ error }

func main() {
	root := &cobra.Command{
		Use:           "s3drive",
		Short:         "Mount an S3 bucket or folder as a local drive",
		Version:       version(),
		SilenceUsage:  true,
		SilenceErrors: true,
		// A word that is no command is a usage mistake (exit 2), as a bad
		// flag is; cobra's own check would make it a failure (exit 1).
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q (commands: mount, unmount, demo, url, status, policy; see s3drive --help)", args[0])}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	root.SetVersionTemplate("s3drive {{.Version}}\n")
	addHelperHelp(root)
	root.AddCommand(mountCmd(), unmountCmd(), demoCmd(), policyCmd(), urlCmd(), statusCmd())
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	var err error
	if isHelperCall(os.Args[1:]) {
		err = runHelper(os.Args[1:])
	} else {
		err = root.Execute()
	}
	if err == nil {
		os.Exit(exitOK)
	}
	fmt.Fprintln(os.Stderr, "s3drive:", err)
	var ue usageError
	var fe flushError
	switch {
	case errors.As(err, &ue):
		os.Exit(exitUsage)
	case errors.As(err, &fe):
		os.Exit(exitNotFlush)
	}
	os.Exit(exitFailure)
}

// exactArgs is cobra.ExactArgs with errors marked as usage errors.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{fmt.Errorf("%w\nusage: %s", err, cmd.UseLine())}
		}
		return nil
	}
}
