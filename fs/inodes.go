package fs

import (
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
}

// pruneBatch is how many inodes one prune notification names.
const pruneBatch = 256

func newInodeBudget(max int) *inodeBudget {
	b := &inodeBudget{prune: make(chan *fs.Inode, 4*pruneBatch)}
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
func (b *inodeBudget) used(n *fs.Inode) { b.lru.Add(n, struct{}{}) }

// forgotten notes that the kernel forgot n.
func (b *inodeBudget) forgotten(n *fs.Inode) { b.lru.Remove(n) }

// pruner sends the notifications from a goroutine of its own: the kernel
// takes the parent folder's lock to act on one, which a request in
// progress on that folder may hold, so no request may wait for it.
func (b *inodeBudget) pruner() {
	batch := make([]*fs.Inode, 0, pruneBatch)
	for n := range b.prune {
		batch = append(batch[:0], n)
	drain:
		for len(batch) < pruneBatch {
			select {
			case n := <-b.prune:
				batch = append(batch, n)
			default:
				break drain
			}
		}
		var idle []*fs.Inode
		for _, n := range batch {
			if f, ok := n.Operations().(*File); !ok || f.idle() {
				idle = append(idle, n)
			}
		}
		if len(idle) > 0 && idle[0].NotifyPrune(idle) == syscall.ENOSYS {
			// Kernels before 6.16: invalidate the names instead.
			for _, n := range idle {
				if name, parent := n.Parent(); parent != nil {
					parent.NotifyEntry(name)
				}
			}
		}
	}
}
