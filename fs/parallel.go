package fs

import "sync"

// parallel calls fn for each item, at most n at a time, and returns once
// every call has: the shape of a folder move's copies, a flush of folder
// markers and a large batch of removals. stop, if not nil, is asked before
// each item is started; once it says true the rest are skipped.
func parallel[T any](n int, items []T, stop func() bool, fn func(T)) {
	var wg sync.WaitGroup
	slots := make(chan struct{}, n)
	for _, it := range items {
		if stop != nil && stop() {
			break
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			fn(it)
		}()
	}
	wg.Wait()
}
