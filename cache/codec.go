package cache

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"time"
)

// The store keeps each Meta in a compact binary form: a 100,000-object
// folder walked once writes 100,000 entries, and the store's pages are
// mapped into the mount's memory when read, so their size is resident set.
// (JSON, the first format, took about 4 times the room; entries in it are
// still read.)
const storeFormat = 1

const (
	flagUID = 1 << iota
	flagGID
	flagSymlink
	flagLastModified
	flagMtime
	// Times added after the first release of the format, at the end of
	// the entry: an older reader ignores them.
	flagCtime
	flagAtime
)

// encodeStored returns m in the store's format.
func encodeStored(m *Meta) []byte {
	var flags uint64
	set := func(bit uint64, on bool) {
		if on {
			flags |= bit
		}
	}
	set(flagUID, m.HasUID)
	set(flagGID, m.HasGID)
	set(flagSymlink, m.IsSymlnk)
	set(flagLastModified, !m.LastModified.IsZero())
	set(flagMtime, !m.Mtime.IsZero())
	set(flagCtime, !m.Ctime.IsZero())
	set(flagAtime, !m.Atime.IsZero())
	b := make([]byte, 0, 64+len(m.ETag)+len(m.Target))
	b = append(b, storeFormat)
	b = binary.AppendUvarint(b, flags)
	b = binary.AppendVarint(b, m.Size)
	b = appendString(b, m.ETag)
	if flags&flagLastModified != 0 {
		b = appendTime(b, m.LastModified)
	}
	if flags&flagMtime != 0 {
		b = appendTime(b, m.Mtime)
	}
	b = binary.AppendUvarint(b, uint64(m.Mode))
	b = binary.AppendUvarint(b, uint64(m.UID))
	b = binary.AppendUvarint(b, uint64(m.GID))
	b = appendString(b, m.Target)
	b = appendString(b, m.StorageClass)
	b = binary.AppendUvarint(b, uint64(len(m.Extra)))
	keys := make([]string, 0, len(m.Extra))
	for k := range m.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = appendString(appendString(b, k), m.Extra[k])
	}
	if flags&flagCtime != 0 {
		b = appendTime(b, m.Ctime)
	}
	if flags&flagAtime != 0 {
		b = appendTime(b, m.Atime)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendTime(b []byte, t time.Time) []byte {
	return binary.AppendUvarint(binary.AppendVarint(b, t.Unix()), uint64(t.Nanosecond()))
}

var errCorrupt = errors.New("corrupt store entry")

// decodeStored reads an entry in either format.
func decodeStored(v []byte) (Meta, error) {
	var m Meta
	if len(v) > 0 && v[0] == '{' {
		return m, json.Unmarshal(v, &m)
	}
	if len(v) == 0 || v[0] != storeFormat {
		return m, errCorrupt
	}
	r := reader{b: v[1:]}
	flags := r.uvarint()
	m.HasUID, m.HasGID, m.IsSymlnk = flags&flagUID != 0, flags&flagGID != 0, flags&flagSymlink != 0
	m.Size = r.varint()
	m.ETag = r.string()
	if flags&flagLastModified != 0 {
		m.LastModified = r.time()
	}
	if flags&flagMtime != 0 {
		m.Mtime = r.time()
	}
	m.Mode, m.UID, m.GID = uint32(r.uvarint()), uint32(r.uvarint()), uint32(r.uvarint())
	m.Target = r.string()
	m.StorageClass = r.string()
	if n := r.uvarint(); n > uint64(len(r.b)) {
		r.err = true // each pair takes at least two bytes
	} else if n > 0 {
		m.Extra = make(map[string]string, n)
		for range n {
			k := r.string()
			m.Extra[k] = r.string()
		}
	}
	if flags&flagCtime != 0 {
		m.Ctime = r.time()
	}
	if flags&flagAtime != 0 {
		m.Atime = r.time()
	}
	if r.err {
		return Meta{}, errCorrupt
	}
	return m, nil
}

// reader consumes a store entry; a short or malformed one sets err.
type reader struct {
	b   []byte
	err bool
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err, r.b = true, nil
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) time() time.Time {
	sec := r.varint()
	return time.Unix(sec, int64(r.uvarint())).UTC()
}
