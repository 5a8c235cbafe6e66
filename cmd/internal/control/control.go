// Package control is the control socket of a running mount: a unix socket
// (mode 0600) through which the s3drive commands talk to the mount they
// concern. `s3drive unmount` asks it to upload what it holds, unmount and
// report how that went, so that the command's exit status is the daemon's;
// `s3drive url` has it sign a link with its credentials; `s3drive status`
// asks what it is doing. Requests and answers are one JSON line each.
package control

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/s3drive/s3drive/fs"
)

// Operations on the socket.
const (
	OpUnmount = "unmount"
	OpLink    = "link"
	OpStatus  = "status"
)

// Request is one call on the socket.
type Request struct {
	Op   string          `json:"op"`
	Link *fs.LinkRequest `json:"link,omitempty"` // OpLink
}

// Response answers a Request. Code is the exit status the command should
// end with: 0 done, 1 failed, 3 unmounted with data left behind.
type Response struct {
	Code   int     `json:"code"`
	Error  string  `json:"error,omitempty"`
	URL    string  `json:"url,omitempty"`    // OpLink
	Status *Status `json:"status,omitempty"` // OpStatus
}

// Dir is where the sockets of this user's mounts live: the runtime
// directory ($XDG_RUNTIME_DIR, or /run for root), else the temp directory.
func Dir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "s3drive")
	}
	if os.Geteuid() == 0 {
		return "/run/s3drive"
	}
	return filepath.Join(os.TempDir(), "s3drive-"+strconv.Itoa(os.Geteuid()))
}

// SocketPath is the socket of the mount at mountpoint (an absolute path).
func SocketPath(mountpoint string) string {
	sum := sha256.Sum256([]byte(mountpoint))
	return filepath.Join(Dir(), hex.EncodeToString(sum[:12])+".sock")
}

// Status is a mount's answer to OpStatus.
type Status struct {
	Mountpoint string    `json:"mountpoint"`
	Source     string    `json:"source"`
	PID        int       `json:"pid"`
	Since      time.Time `json:"since"`
	fs.Status
	// Recovered is what this run finished of what a previous one left.
	Recovered fs.Recovery `json:"recovered"`
	// Requests and Errors count S3 requests sent, and those that failed
	// (throttled, denied, no answer, server errors), by operation.
	Requests map[string]int64 `json:"requests"`
	Errors   map[string]int64 `json:"errors"`
}

// Server serves one mount's socket.
type Server struct {
	ln       *net.UnixListener
	path     string
	inFlight sync.WaitGroup
}

// Listen creates the socket for mountpoint. A socket left by a process
// that died is replaced.
func Listen(mountpoint string) (*Server, error) {
	path := SocketPath(mountpoint)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s is in use by another mount", path)
	}
	os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	ln.SetUnlinkOnClose(true)
	return &Server{ln: ln, path: path}, nil
}

// Serve answers requests with handle until Close. Each connection is
// served on its own goroutine; its context ends if the caller hangs up
// (a Ctrl-C of s3drive url --wait).
func (s *Server) Serve(handle func(context.Context, Request) Response) {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.inFlight.Add(1)
		go func() {
			defer s.inFlight.Done()
			defer c.Close()
			var req Request
			r := bufio.NewReader(c)
			if err := json.NewDecoder(r).Decode(&req); err != nil {
				return
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				// The caller sends nothing more: the read ends when it hangs up.
				io.Copy(io.Discard, r)
				cancel()
			}()
			json.NewEncoder(c).Encode(handle(ctx, req))
		}()
	}
}

// Close removes the socket, then waits up to closeWait for answers being
// written (the unmount's, which the command waits for).
func (s *Server) Close() error {
	err := s.ln.Close()
	done := make(chan struct{})
	go func() {
		s.inFlight.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeWait):
	}
	return err
}

const closeWait = 5 * time.Second

// ErrNoMount means no running mount serves a socket for that mountpoint.
var ErrNoMount = errors.New("no control socket for this mountpoint")

// Call sends req to the mount at mountpoint and waits for its answer.
func Call(mountpoint string, req Request) (Response, error) {
	c, err := net.Dial("unix", SocketPath(mountpoint))
	if err != nil {
		return Response{}, fmt.Errorf("%w: %v", ErrNoMount, err)
	}
	defer c.Close()
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return Response{}, err
	}
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return Response{}, fmt.Errorf("the mount ended without answering: %w", err)
	}
	return resp, nil
}
