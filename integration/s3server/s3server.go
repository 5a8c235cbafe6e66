// Package s3server runs a real S3 server on loopback — versitygw, pinned in
// go.mod as a Go tool — for the integration tests and the benchmark, and
// returns SDK clients for it.
package s3server

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The server's root credentials.
const (
	AccessKey = "s3drive-test"
	SecretKey = "s3drive-test-secret"
)

// Binary returns the path of the versitygw binary, building it the first
// time (the go command caches it). It must run inside this module.
func Binary() (string, error) {
	out, err := exec.Command("go", "tool", "-n", "versitygw").Output()
	if err != nil {
		return "", fmt.Errorf("building versitygw (go tool -n versitygw): %v", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Server is one running versitygw.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT
	cmd      *exec.Cmd
}

// Start runs versitygw's posix backend over root (data and sidecar
// metadata under it, the log beside it) on a free loopback port, and
// returns once it accepts connections. flags are more versitygw options,
// such as --quiet.
func Start(bin, root string, flags ...string) (*Server, error) {
	addr, err := FreePort()
	if err != nil {
		return nil, err
	}
	return StartAt(bin, root, addr, flags...)
}

// StartAt is Start on a given address: a restart of a server that was
// stopped, for tests of a server that goes away and comes back.
func StartAt(bin, root, addr string, flags ...string) (*Server, error) {
	for _, d := range []string{filepath.Join(root, "data"), filepath.Join(root, "sidecar")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	// Keep-alive, off by default in versitygw, as S3 keeps connections
	// open: without it every request paid a TCP connection of its own.
	args := append([]string{"--access", AccessKey, "--secret", SecretKey, "--port", addr, "--keep-alive"}, flags...)
	args = append(args, "posix", "--sidecar", filepath.Join(root, "sidecar"), filepath.Join(root, "data"))
	cmd := exec.Command(bin, args...)
	logFile, err := os.OpenFile(root+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return &Server{Endpoint: "http://" + addr, cmd: cmd}, nil
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, fmt.Errorf("versitygw did not listen on %s: %v (log: %s.log)", addr, err, root)
		}
		time.Sleep(20 * time.Millisecond) // polling a port nothing can tell us about
	}
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return strings.TrimPrefix(s.Endpoint, "http://") }

// PID is the server process's id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop kills the server and waits for it to exit.
func (s *Server) Stop() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// FreePort returns a loopback address nothing listens on.
func FreePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Client returns an SDK client for endpoint with the server's credentials.
func Client(endpoint string) *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
		// versitygw, like several S3-compatible servers, predates the
		// SDK's default CRC trailers.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}
