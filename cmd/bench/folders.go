package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// foldersPrefix holds the big folders, written by the raw client (another
// client, as far as every mount knows) and shared by all tools.
const foldersPrefix = "folders"

// folders measures browsing folders of each size in sizes: ls -l and ls -f
// on a fresh mount (cold) and again (warm), and 100 files created in the
// folder. Requests are counted from the server's access log, the same way
// for every tool, and each tool's peak resident set is noted.
func (b *bench) folders(ctx context.Context, tools []tool, sizes []int) error {
	for _, n := range sizes {
		dir := fmt.Sprintf("n%d", n)
		start := time.Now()
		if err := b.fillFolder(ctx, foldersPrefix+"/"+dir, n); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "bench: wrote %d objects in %.0f s\n", n, time.Since(start).Seconds())
		if err := b.rawFolder(ctx, foldersPrefix+"/"+dir+"/", n); err != nil {
			return err
		}
		for _, t := range tools {
			if t.treesOnly {
				continue
			}
			if err := b.folder(t, dir, n); err != nil {
				if t.ours() {
					return err
				}
				fmt.Fprintf(os.Stderr, "bench: %s failed: %v\n", t.name, err)
				b.rows = append(b.rows, row{workload: fmt.Sprintf("folder of %d", n), tool: t.name, note: "failed: " + firstLine(err.Error())})
			}
		}
	}
	return nil
}

// folder runs one tool's rows for the folder dir of n objects.
func (b *bench) folder(t tool, dir string, n int) error {
	label := func(what string) string { return fmt.Sprintf("%s, folder of %d", what, n) }
	for _, what := range []string{"ls -l", "ls -f"} {
		cacheDir, err := os.MkdirTemp(b.work, t.name+"-cache-folder-")
		if err != nil {
			return err
		}
		m, err := b.mountAt(t, foldersPrefix, cacheDir)
		if err != nil {
			return err
		}
		args := strings.Fields(what)
		for _, pass := range []string{"cold", "warm"} {
			err := b.logged(m, label(what+", "+pass), func() error {
				return listQuietly(n, args[0], args[1], m.path(dir))
			})
			if err != nil {
				m.unmount()
				return err
			}
		}
		if what == "ls -l" {
			err = b.logged(m, label("100 files created (echo > f)"), func() error {
				return runQuiet("sh", "-c", fmt.Sprintf("cd %s && for i in $(seq 1 100); do echo x > new-%s-$i.txt; done && sync .", m.path(dir), t.name))
			})
		}
		m.unmount()
		if err != nil {
			return err
		}
	}
	// The created files go, so that every tool sees the same folder.
	return b.removePrefix(context.Background(), foldersPrefix+"/"+dir+"/new-"+t.name+"-")
}

// listQuietly runs ls and checks it printed a line per entry.
func listQuietly(n int, name string, args ...string) error {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return fmt.Errorf("%s %v: %w", name, args, err)
	}
	lines := strings.Count(string(out), "\n")
	if lines < n {
		return fmt.Errorf("%s %v printed %d lines for %d objects", name, args, lines, n)
	}
	return nil
}

// logged times fn on m and records the requests the server logged for it
// and the tool's peak resident set so far.
func (b *bench) logged(m *mount, workload string, fn func() error) error {
	before, err := b.accessLines()
	if err != nil {
		return err
	}
	secs, err := timed(nil, fn)
	if err != nil {
		return fmt.Errorf("%s: %w", workload, err)
	}
	requests, err := b.requestsSince(before)
	if err != nil {
		return err
	}
	note := fmt.Sprintf("peak RSS %d MiB", m.peakRSS()/mib)
	fmt.Fprintf(os.Stderr, "bench: %-8s %-42s %7.2f s\n", m.tool.name, workload, secs)
	b.rows = append(b.rows, row{workload: workload, tool: m.tool.name, seconds: secs, requests: requests, note: note})
	return nil
}

// accessLog is where the server logs every request.
func (b *bench) accessLog() string { return filepath.Join(b.work, "access.log") }

// accessLines counts the lines the access log holds.
func (b *bench) accessLines() (int, error) {
	n := 0
	err := b.scanLog(func(string) { n++ })
	return n, err
}

// requestsSince counts the requests logged after the first skip lines, by
// operation. The server writes each line before it answers, so every
// request fn sent is there when fn returns.
func (b *bench) requestsSince(skip int) (map[string]int64, error) {
	counts := map[string]int64{}
	i := 0
	err := b.scanLog(func(line string) {
		if i++; i <= skip {
			return
		}
		// The operation is the eighth field: "s3_HeadObject".
		if f := strings.Fields(line); len(f) > 7 {
			counts[strings.TrimPrefix(f[7], "s3_")]++
		}
	})
	return counts, err
}

func (b *bench) scanLog(fn func(string)) error {
	f, err := os.Open(b.accessLog())
	if err != nil {
		return err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		fn(s.Text())
	}
	return s.Err()
}

// fillFolder writes n one-byte objects prefix/f000000.txt…, 64 at a time.
func (b *bench) fillFolder(ctx context.Context, prefix string, n int) error {
	return inParallel(64, n, func(i int) error {
		_, err := b.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket),
			Key: aws.String(fmt.Sprintf("%s/f%06d.txt", prefix, i)), Body: strings.NewReader("x")})
		return err
	})
}

// inParallel runs fn(0) … fn(n-1), workers at a time, and returns the
// first error.
func inParallel(workers, n int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// rawFolder is the raw client's floor for the same folder: every page of
// its listing, then that and a HEAD of every object, 32 in flight.
func (b *bench) rawFolder(ctx context.Context, prefix string, n int) error {
	var keys []string
	list := func() error {
		keys = keys[:0]
		p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix), Delimiter: aws.String("/")})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return err
			}
			for _, o := range page.Contents {
				keys = append(keys, aws.ToString(o.Key))
			}
		}
		return nil
	}
	secs, err := timed(nil, list)
	if err != nil {
		return err
	}
	b.rows = append(b.rows, row{workload: fmt.Sprintf("ListObjectsV2 of a folder of %d", n), tool: "raw SDK", seconds: secs})
	secs, err = timed(nil, func() error {
		if err := list(); err != nil {
			return err
		}
		return headAll(ctx, b.client, keys)
	})
	if err != nil {
		return err
	}
	b.rows = append(b.rows, row{workload: fmt.Sprintf("list + HeadObject of each (32 in flight), folder of %d", n), tool: "raw SDK", seconds: secs})
	return nil
}

func headAll(ctx context.Context, c *s3.Client, keys []string) error {
	return inParallel(32, len(keys), func(i int) error {
		_, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(keys[i])})
		return err
	})
}

// removePrefix deletes every object under prefix.
func (b *bench) removePrefix(ctx context.Context, prefix string) error {
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		var ids []types.ObjectIdentifier
		for _, o := range page.Contents {
			ids = append(ids, types.ObjectIdentifier{Key: o.Key})
		}
		if len(ids) == 0 {
			continue
		}
		if _, err := b.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &types.Delete{Objects: ids}}); err != nil {
			return err
		}
	}
	return nil
}
