package control

import (
	"context"
	"errors"
	"os"
	"testing"
)

func TestCallReachesServer(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	mp := "/mnt/acme"
	if _, err := Call(mp, Request{Op: "unmount"}); !errors.Is(err, ErrNoMount) {
		t.Fatalf("call with no mount: %v, want ErrNoMount", err)
	}
	s, err := Listen(mp)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Listen(mp); err == nil {
		t.Fatal("a second mount took a live socket")
	}
	st, err := os.Stat(SocketPath(mp))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", st, err)
	}
	go s.Serve(func(_ context.Context, r Request) Response { return Response{Code: 3, Error: "1 file left: " + r.Op} })
	resp, err := Call(mp, Request{Op: "unmount"})
	if err != nil || resp.Code != 3 || resp.Error != "1 file left: unmount" {
		t.Fatalf("answer %+v, %v", resp, err)
	}
}
