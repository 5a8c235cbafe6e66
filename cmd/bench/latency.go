package main

import (
	"net"
	"sync"
	"time"
)

// delayProxy forwards TCP connections to a target, holding every chunk of
// bytes for a fixed delay in each direction: a request then costs two
// delays more, as it would across a network to a real S3 region, while
// throughput is unchanged (chunks are stamped on arrival and released in
// order, not slept on one after another).
type delayProxy struct {
	ln     net.Listener
	target string
	delay  time.Duration
	wg     sync.WaitGroup
}

// startDelayProxy listens on a free loopback port and forwards to target.
func startDelayProxy(target string, delay time.Duration) (*delayProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &delayProxy{ln: ln, target: target, delay: delay}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *delayProxy) addr() string { return p.ln.Addr().String() }

func (p *delayProxy) close() {
	p.ln.Close()
	p.wg.Wait()
}

func (p *delayProxy) serve() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer client.Close()
			server, err := net.Dial("tcp", p.target)
			if err != nil {
				return
			}
			defer server.Close()
			done := make(chan struct{})
			go func() {
				p.pipe(server, client)
				close(done)
			}()
			p.pipe(client, server)
			<-done
		}()
	}
}

type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst, each chunk delay after it arrived, and closes
// dst's write side when src ends.
func (p *delayProxy) pipe(dst, src net.Conn) {
	chunks := make(chan chunk, 4096)
	go func() {
		defer close(chunks)
		for {
			buf := make([]byte, 64<<10)
			n, err := src.Read(buf)
			if n > 0 {
				chunks <- chunk{buf[:n], time.Now().Add(p.delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range chunks {
		time.Sleep(time.Until(c.due))
		if _, err := dst.Write(c.data); err != nil {
			src.Close() // ends the reader
			for range chunks {
			}
			return
		}
	}
	dst.(*net.TCPConn).CloseWrite()
}
