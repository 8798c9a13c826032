package main

import (
	"testing"
	"time"
)

// FuzzImportFile: import's readers take any bytes without panicking, and
// give one line number per record, in increasing order; each record then
// converts or fails without panicking.
func FuzzImportFile(f *testing.F) {
	f.Add([]byte("owner,name,scopes,hash,id\nteam-1,CI,a b,sha256:00,\n"), true)
	f.Add([]byte("owner,hash,metadata\n\"t\",\"$argon2id$v=19$m=64,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA\",a=b c=d\n"), true)
	f.Add([]byte(`{"owner": "t", "hash": "sha256:00", "scopes": ["a"], "expires": "30d", "allow_ips": ["10.0.0.0/8"]}`+"\n\n{}\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, isCSV bool) {
		read := readImportJSONL
		if isCSV {
			read = readImportCSV
		}
		recs, lines, err := read(data)
		if err != nil {
			return
		}
		if len(recs) != len(lines) {
			t.Fatalf("%d records, %d line numbers", len(recs), len(lines))
		}
		for i := range lines {
			if lines[i] < 1 || i > 0 && lines[i] <= lines[i-1] {
				t.Fatalf("line numbers %v", lines)
			}
			_, _ = recs[i].legacyImport(time.Now())
		}
	})
}
