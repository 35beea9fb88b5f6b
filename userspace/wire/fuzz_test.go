package wire

import (
	"bytes"
	"io"
	"testing"
)

// FuzzReadStartup feeds arbitrary bytes to the startup decoder: it must never
// panic, and what it accepts must re-encode to an equivalent packet.
func FuzzReadStartup(f *testing.F) {
	f.Add(startupBytes(3<<16, "user", "alice", "database", "db"))
	f.Add(AppendSSLRequest(nil))
	f.Add(AppendCancelRequest(nil, 7, []byte{9, 9, 9, 9}))
	f.Add([]byte{0, 0, 0, 8, 4, 210, 22, 48})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ReadStartup(bytes.NewReader(data), true)
		if err != nil || s.Kind != KindStartup {
			return
		}
		again, err := ReadStartup(bytes.NewReader(AppendStartupMessage(nil, s.Params)), false)
		if err != nil || len(again.Params) != len(s.Params) {
			t.Fatalf("accepted packet does not round-trip: %v", err)
		}
	})
}

// FuzzReader frames arbitrary bytes as typed messages with a small limit: no
// panic, no message above the limit, and streamed bytes equal the input
// consumed.
func FuzzReader(f *testing.F) {
	f.Add(append(msg('Q', "select 1\x00"), msg('X', "")...))
	f.Add(msg('D', string(make([]byte, 300))))
	f.Add([]byte{'Q', 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), 16, 256)
		var out bytes.Buffer
		for i := 0; ; i++ {
			var err error
			if i%2 == 0 {
				var m []byte
				_, m, err = r.Next()
				if err == nil {
					if len(m) > 256+HeaderLen {
						t.Fatalf("message of %d bytes above the limit", len(m))
					}
					out.Write(m)
				}
			} else {
				err = r.Stream(&out)
			}
			if err == io.EOF {
				if !bytes.Equal(out.Bytes(), data) {
					t.Fatalf("relayed bytes differ from input")
				}
				return
			}
			if err != nil {
				if !bytes.HasPrefix(data, out.Bytes()) {
					t.Fatalf("relayed bytes are not a prefix of the input")
				}
				return
			}
		}
	})
}
