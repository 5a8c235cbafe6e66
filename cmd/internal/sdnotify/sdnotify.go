// Package sdnotify tells systemd how a mount started as a Type=notify
// service is doing: ready once the drive serves, a status line with what
// waits to be uploaded, and stopping while it flushes. Outside systemd
// (no NOTIFY_SOCKET) every call does nothing.
package sdnotify

import (
	"context"
	"fmt"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Ready says the drive is mounted and serving.
func Ready(status string) { send(daemon.SdNotifyReady + "\nSTATUS=" + status) }

// Stopping says the drive is flushing and will exit.
func Stopping(status string) { send(daemon.SdNotifyStopping + "\nSTATUS=" + status) }

// Status updates the status line systemctl status shows.
func Status(status string) { send("STATUS=" + status) }

// Watch sends the status pending reports every interval until ctx ends;
// pending returns the files whose changes wait for S3.
func Watch(ctx context.Context, interval time.Duration, pending func() int) {
	t := time.NewTicker(interval)
	defer t.Stop()
	last := -1
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n := pending(); n != last {
			last = n
			Status(Serving(n))
		}
	}
}

// Serving is the status line of a running drive.
func Serving(pending int) string {
	if pending == 0 {
		return "serving; nothing waiting to be uploaded"
	}
	return fmt.Sprintf("serving; %d file(s) waiting to be uploaded", pending)
}

func send(state string) { daemon.SdNotify(false, state) }
