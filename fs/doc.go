// Package fs is s3drive's filesystem: a go-fuse node tree that turns POSIX
// calls into S3 requests through s3backend.Backend.
//
// Names and keys. A node's key is its path from the mount root, computed from
// the live inode tree on every use, so a rename moves every descendant at
// once. Folders are key prefixes ("a/b/"), with or without a zero-byte
// marker object of that name; files are objects; symlinks are objects whose
// mode metadata says S_IFLNK and whose body is the target. Keys that cannot
// be file names are hidden (keys.go).
//
// Caching, in two layers. The kernel caches entries and attributes for the
// metadata TTL and negative entries for the negative TTL (MountOptions). Below
// it, package cache keeps metadata, negative entries and folder listings; a
// lookup in a folder listed within the TTL costs no request. Metadata is only
// trusted while a listing (or HEAD) still shows the ETag, size and
// LastModified it was recorded with, and it is persisted, so objects this
// mount wrote or saw need no HEAD even after a remount (lookup.go).
//
// Writes. Content being written lives in a staging file on local disk owned by
// the inode, never in memory and never per handle, so dup'd descriptors, other
// handles and Getattr all see the same bytes. Writing into an existing object
// first downloads it into staging. Flush (every close) and Fsync upload the
// whole object and return only when S3 acknowledged it; a failure returns EIO
// and keeps the staged file dirty: it is retried in the background, and by
// the next Flush, Fsync or FlushAll (run at unmount). Release's result is
// ignored by the kernel, so errors are never reported there (upload.go,
// retry.go).
//
// Crashes, outages, full disks. Every staging file has a journal entry
// (package journal): its key, base version and whether a close asked for
// it; Recover finishes what a previous run left, before the mount serves
// (recover.go, journaling.go). While S3 does not answer, lookups and folder
// reads are served from the caches (offline.go). A write that finds the
// cache disk full takes space back from the data cache, then frees the
// parts of a streamed upload S3 confirmed (space.go).
//
// Reads of clean files go through the data cache: whole files fetched by
// parallel ranged GETs shared per inode (fetch.go), or, without it, ranged
// GETs with a per-handle read-ahead window (readahead.go); either way pinned
// to the ETag seen at lookup with If-Match.
//
// What waits. Some changes are shown at once and sent later, each the way a
// local disk defers them until fsync: removals, in batches (deletes.go); a
// file's attribute changes, carried by the next copy or upload
// (node_file.go); a folder's marker, once its attributes settle
// (markers.go). fsync of a folder and unmount send everything waiting.
// Deferred work never changes what the mount shows: queued removals hide
// their keys until S3 confirms them, carry the ETag they remove, and are
// ordered against this mount's writes of the same key (deletes.go); answers
// from S3 that a change of this mount overtook are not cached, nor taken by
// inodes (changes.go); only a writer's own close uploads, so a reader's
// close never completes a streamed upload half way (handle.go).
package fs
