// Package integration holds end-to-end tests: a real S3 server (versitygw,
// pinned in go.mod as a tool) on 127.0.0.1, the real s3drive binary mounted
// over it with FUSE, and real programs (cp, mv, rm, dd, diff, stat, ls)
// driving the mount. Results are checked through the AWS SDK, and request
// counts through the mount's user.s3drive.stats xattr.
//
// Failure is tested the same way: a fault proxy between the mount and the
// server (faultproxy_test.go) refuses, falls silent, throttles, resets and
// cuts bodies; the daemon is killed with SIGKILL and remounted on the same
// --cache-dir (outage_test.go); and TestStressModel races worker processes
// through it, comparing mount, fresh mount and S3 with what their calls
// implied.
//
// They need root (or /dev/fuse access) and fuse3. Outside CI a missing
// prerequisite skips the tests with the reason; with CI=true it fails them.
package integration
