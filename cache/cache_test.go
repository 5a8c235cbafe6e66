package cache

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestCache(t *testing.T, path string) (*Cache, *fakeClock) {
	t.Helper()
	c, err := Open(Options{TTL: time.Second, NegativeTTL: 2 * time.Second, StorePath: path})
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	c.now = clock.now
	return c, clock
}

func TestFreshnessFollowsTTL(t *testing.T) {
	c, clock := newTestCache(t, "")
	c.Put("a", Meta{Size: 1, ETag: "x"})
	if _, ok := c.Fresh("a"); !ok {
		t.Fatal("entry not fresh right after Put")
	}
	clock.t = clock.t.Add(time.Second)
	if _, ok := c.Fresh("a"); ok {
		t.Fatal("entry still fresh after the TTL")
	}
	if _, ok := c.Known("a"); !ok {
		t.Fatal("entry forgotten after the TTL; it must stay known for validation")
	}
}

func TestMatchValidatesAgainstListing(t *testing.T) {
	c, clock := newTestCache(t, "")
	lm := time.Unix(1_700_000_000, 250_000_000)
	c.Put("k", Meta{Size: 3, ETag: "e1", Mode: 0o100600})
	clock.t = clock.t.Add(time.Hour)

	// Uploaded entries have no LastModified: ETag and size decide, and the
	// listing's LastModified is recorded.
	m, ok := c.Match("k", Observed{Size: 3, ETag: "e1", LastModified: lm})
	if !ok || m.Mode != 0o100600 || !m.LastModified.Equal(lm) {
		t.Fatalf("Match = %+v, %v", m, ok)
	}
	if _, ok := c.Fresh("k"); !ok {
		t.Fatal("a matched entry must count as confirmed now")
	}
	// HEAD dates have whole seconds; listings milliseconds.
	if _, ok := c.Match("k", Observed{Size: 3, ETag: "e1", LastModified: time.Unix(1_700_000_000, 0)}); !ok {
		t.Fatal("same second must match")
	}
	// Changed by another client: dropped, never served.
	if _, ok := c.Match("k", Observed{Size: 3, ETag: "e2", LastModified: lm}); ok {
		t.Fatal("changed ETag matched")
	}
	if _, ok := c.Known("k"); ok {
		t.Fatal("stale entry kept after a mismatch")
	}
	c.Put("s", Meta{Size: 3, ETag: "e", LastModified: lm})
	if _, ok := c.Match("s", Observed{Size: 3, ETag: "e", LastModified: lm.Add(5 * time.Second)}); ok {
		t.Fatal("rewritten object (same ETag, new LastModified) matched")
	}
	if _, ok := c.Match("s", Observed{Size: 4, ETag: "e"}); ok {
		t.Fatal("different size matched")
	}
}

func TestNegativeEntries(t *testing.T) {
	c, clock := newTestCache(t, "")
	c.SetNegative("probe")
	if !c.Negative("probe") {
		t.Fatal("negative entry not recorded")
	}
	c.Put("probe", Meta{})
	if c.Negative("probe") {
		t.Fatal("Put must clear a negative entry")
	}
	c.SetNegative("other")
	clock.t = clock.t.Add(2 * time.Second)
	if c.Negative("other") {
		t.Fatal("negative entry outlived its TTL")
	}
}

func TestListings(t *testing.T) {
	c, clock := newTestCache(t, "")
	l := NewListing([]Entry{{Name: "a"}, {Name: "d", Dir: true}, {Name: "d"}}, false, clock.now())
	c.PutListing("dir/", l)
	got, fresh := c.Listing("dir/")
	if !fresh || got.Len() != 2 {
		t.Fatalf("listing fresh=%v len=%d", fresh, got.Len())
	}
	if e, _ := got.Get("d"); !e.Dir {
		t.Error("a directory must win over a file of the same name")
	}
	if left := got.Remove("a"); left != 1 {
		t.Errorf("Remove left %d", left)
	}
	if c.Absent("dir/", "d") || !c.Absent("dir/", "a") || c.Absent("other/", "x") {
		t.Error("Absent must follow the listing, and know nothing of unlisted folders")
	}
	clock.t = clock.t.Add(time.Second)
	if got, fresh := c.Listing("dir/"); got == nil || fresh {
		t.Error("an expired listing must be returned as stale")
	}
	// Past the TTL, what it does not show is still trusted for the
	// negative TTL, as a failed HEAD would be.
	if !c.Absent("dir/", "a") {
		t.Error("a missing name must stay absent for the negative TTL")
	}
	clock.t = clock.t.Add(time.Second)
	if c.Absent("dir/", "a") {
		t.Error("absence outlived the negative TTL")
	}
	c.DropTree("dir/")
	if got, _ := c.Listing("dir/"); got != nil {
		t.Error("DropTree kept the listing")
	}
}

func TestStoreSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	c, _ := newTestCache(t, path)
	want := Meta{Size: 7, ETag: "abc", Mode: 0o100644, Mtime: time.Unix(1600000000, 5), HasUID: true, UID: 42}
	c.Put("a/b.txt", want)
	// The root's key is empty, which the database refuses: a batch with
	// it must still store (the root's and everyone else's).
	c.Put("", Meta{Mode: 0o40750, Mtime: time.Unix(1_000_000_000, 0)})
	c.Put("gone", Meta{})
	c.Delete("gone")
	if _, err := Open(Options{StorePath: path}); err == nil {
		t.Fatal("a second open of the same store must fail while it is in use")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c2, _ := newTestCache(t, path)
	defer c2.Close()
	got, ok := c2.Known("a/b.txt")
	if !ok || got.ETag != want.ETag || !got.Mtime.Equal(want.Mtime) || got.UID != 42 || got.Mode != want.Mode {
		t.Fatalf("after reopen: %+v, %v", got, ok)
	}
	if root, ok := c2.Known(""); !ok || root.Mode != 0o40750 || root.Mtime.Unix() != 1_000_000_000 {
		t.Errorf("the root's entry after reopen: %+v, %v", root, ok)
	}
	if _, ok := c2.Known("gone"); ok {
		t.Fatal("deleted entry came back")
	}
	if _, ok := c2.Fresh("a/b.txt"); ok {
		t.Fatal("entries read back from disk must be revalidated before use")
	}
}

// TestWalkedListingServesItsWalk: a big folder's listing that a readdir
// returned answers lookups for 5 ms an entry; a small folder's, or one no
// readdir returned, for the TTL only.
func TestWalkedListingServesItsWalk(t *testing.T) {
	c, clock := newTestCache(t, "")
	entries := make([]Entry, 10_000)
	for i := range entries {
		entries[i] = Entry{Name: fmt.Sprintf("f%05d", i)}
	}
	c.PutListing("big/", NewListing(entries, false, clock.t))
	c.PutListing("small/", NewListing(entries[:10], false, clock.t))
	clock.t = clock.t.Add(2 * time.Second)
	if _, fresh := c.ListingFor("big/"); fresh {
		t.Error("a listing no readdir returned answers past the TTL")
	}
	for _, dir := range []string{"big/", "small/"} {
		l, _ := c.ListingFor(dir)
		l.MarkRead()
	}
	if _, fresh := c.ListingFor("big/"); !fresh {
		t.Error("a walked listing of 10,000 entries stopped answering after 2 s")
	}
	if _, fresh := c.ListingFor("small/"); fresh {
		t.Error("a walked listing of 10 entries answers past the TTL")
	}
	if _, fresh := c.Listing("big/"); fresh {
		t.Error("a readdir would reuse a listing past the TTL: the next readdir must list again")
	}
	clock.t = clock.t.Add(49 * time.Second)
	if _, fresh := c.ListingFor("big/"); fresh {
		t.Error("a walked listing of 10,000 entries answers past 50 s")
	}
}

// TestListingKeyOrder: entries sort as S3 lists their keys, folders as
// their name and "/"; a listing read while fetched answers only the names
// its pages covered.
func TestListingKeyOrder(t *testing.T) {
	names := []string{"a", "a.txt", "a0", "a/b", "ab", "a-", "", "b", "a a"}
	for _, a := range names {
		for _, b := range names {
			for _, ad := range []bool{false, true} {
				for _, bd := range []bool{false, true} {
					ka, kb := a, b
					if ad {
						ka += "/"
					}
					if bd {
						kb += "/"
					}
					if got, want := compareKeys(a, ad, b, bd), strings.Compare(ka, kb); got != want {
						t.Errorf("compareKeys(%q, %v, %q, %v) = %d, want %d", a, ad, b, bd, got, want)
					}
				}
			}
		}
	}
	l := NewPartialListing(time.Now())
	l.AddPage([]Entry{{Name: "a", Dir: true}, {Name: "a.txt"}})
	if err := l.WaitStarted(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !l.Covers("a.txt") || !l.Covers("a") {
		t.Error("a.txt and a/ are not answered by the page that held them")
	}
	if l.Covers("b") {
		t.Error("b is answered before a page reached it")
	}
	if page, more, _ := l.Page("a", true, 10); len(page) != 0 || more == nil {
		t.Errorf("past the last entry of a partial listing: %v, %v; want a channel to wait on", page, more)
	}
	l.AddPage([]Entry{{Name: "b"}})
	l.Finish(false)
	if got := l.Entries(); len(got) != 3 || got[0].Name != "a.txt" || got[1].Name != "a" || got[2].Name != "b" {
		t.Errorf("entries %v, want a.txt, a/, b", got)
	}
	if !l.Covers("zzz") {
		t.Error("a complete listing does not answer every name")
	}
}

// TestPartialListingShowsAFolderOnce: an object "both" and a folder
// "both/" list apart ("both.txt" sorts between): a readdir of the listing
// while it arrives shows "both" once, as the folder.
func TestPartialListingShowsAFolderOnce(t *testing.T) {
	l := NewPartialListing(time.Now())
	read := func(name string, dir bool) []Entry {
		page, _, err := l.Page(name, dir, 10)
		if err != nil {
			t.Fatal(err)
		}
		return page
	}
	l.AddPage([]Entry{{Name: "a"}, {Name: "both"}, {Name: "both.txt"}})
	first := read("", false)
	if len(first) != 1 || first[0].Name != "a" {
		t.Fatalf("first page %v, want only a: both and both.txt may yet have a folder twin", first)
	}
	if page, more, _ := l.Page("a", false, 10); len(page) != 0 || more == nil {
		t.Errorf("past a: %v, %v; want nothing yet and a channel to wait on", page, more)
	}
	l.AddPage([]Entry{{Name: "both", Dir: true}, {Name: "c"}})
	var names []string
	for _, e := range read("a", false) {
		names = append(names, fmt.Sprintf("%s %v", e.Name, e.Dir))
	}
	if got, want := strings.Join(names, ", "), "both.txt false, both true"; got != want {
		t.Errorf("second page %q, want %q", got, want)
	}
	if e, _ := l.Get("both"); !e.Dir {
		t.Error("both is a file while the listing arrives, want the folder")
	}
	l.Finish(false)
	if page := read("both", true); len(page) != 1 || page[0].Name != "c" {
		t.Errorf("last page %v, want c", page)
	}
}
