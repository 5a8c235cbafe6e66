package fs

import (
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	lru "github.com/hashicorp/golang-lru/v2"
)

// The kernel keeps an inode for every name a program looked up until memory
// pressure makes it forget them, and each costs the mount its node (about
// 700 bytes with go-fuse's tables) for as long: ls -l of a folder of 100,000
// files would hold 70 MB, a million 700 MB. So the mount keeps a budget of
// file and symlink inodes the kernel holds (Options.MaxInodes), in
// least-recently-looked-up order, and asks the kernel to forget those that
// fall out of it and are idle — no open handle, nothing staged or waiting.
// A forgotten name costs a lookup again, answered by the listing or the
// metadata cache without a request. Folders are never pruned: the kernel
// cannot forget a folder whose entries it holds.
type inodeBudget struct {
	lru   *lru.Cache[*fs.Inode, struct{}]
	prune chan *fs.Inode
	// off: the kernel cannot prune, so there is nothing to keep count of.
	off atomic.Bool
}

// pruneBacklog bounds the inodes waiting for their prune notification.
const pruneBacklog = 1024

func newInodeBudget(max int) *inodeBudget {
	b := &inodeBudget{prune: make(chan *fs.Inode, pruneBacklog)}
	b.lru, _ = lru.NewWithEvict(max, func(n *fs.Inode, _ struct{}) {
		select {
		case b.prune <- n:
		default: // a backlog: this one stays, until it is looked up again and falls out anew
		}
	})
	go b.pruner()
	return b
}

// used notes that the kernel looked n up.
func (b *inodeBudget) used(n *fs.Inode) {
	if !b.off.Load() {
		b.lru.Add(n, struct{}{})
	}
}

// forgotten notes that the kernel forgot n.
func (b *inodeBudget) forgotten(n *fs.Inode) { b.lru.Remove(n) }

// prune asks the kernel to forget n if it is idle, and reports whether the
// kernel knows the notification. A file is held locked from the check to
// the notification: a chmod that came between them would leave waiting
// attributes on a file the kernel then forgets, and a later lookup would
// make a second file for the same key. A request in progress on n holds
// the kernel's reference, so the prune spares it.
func prune(n *fs.Inode) bool {
	f, ok := n.Operations().(*File)
	if !ok {
		return n.NotifyPrune([]*fs.Inode{n}) != syscall.ENOSYS
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.idleLocked() {
		return true
	}
	return n.NotifyPrune([]*fs.Inode{n}) != syscall.ENOSYS
}

// pruner sends the notifications from a goroutine of its own, so that no
// request waits while the kernel acts on one.
func (b *inodeBudget) pruner() {
	for n := range b.prune {
		if !prune(n) {
			// Kernels before 6.16 have no FUSE_NOTIFY_PRUNE: no budget
			// there (invalidating names instead would race with changes,
			// see prune).
			b.off.Store(true)
			b.lru.Purge()
			return
		}
	}
}
