package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/apikeykit/apikey"
)

// skipDirs are never scanned: version-control internals.
var skipDirs = map[string]bool{".git": true, ".hg": true, ".svn": true}

// binarySniffLen is how much of a file is read to decide whether it is
// text, as git does: a NUL byte in it means binary.
const binarySniffLen = 8000

type scanFinding struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
	Prefix string `json:"prefix"`
	ID     string `json:"id"`
}

func runScan(ctx context.Context, e *env, args []string) error {
	fset, _, asJSON := flagSet(e, "scan", "PATH...")
	paths, err := parse(fset, args, -1)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		paths = []string{"."}
	}
	var found []scanFinding
	report := func(f scanFinding) {
		found = append(found, f)
		if !*asJSON {
			// The kid identifies the key (revoke it with apikey revoke);
			// the secret is never printed.
			fmt.Fprintf(e.stdout, "%s:%d:%d: %s key %s\n", f.File, f.Line, f.Column, f.Prefix, f.ID)
		}
	}
	for _, root := range paths {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if d.IsDir() {
				if skipDirs[d.Name()] && path != root {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil // symlinks, devices, sockets
			}
			return scanFile(path, report)
		})
		if err != nil {
			return err
		}
	}
	if *asJSON {
		if found == nil {
			found = []scanFinding{}
		}
		if err := writeJSON(e.stdout, found); err != nil {
			return err
		}
	}
	if len(found) > 0 {
		return negative{fmt.Sprintf("%d API key(s) found: revoke each with 'apikey revoke ID', then remove it from the file (and from history)", len(found))}
	}
	return nil
}

// scanFile streams one file through apikey.Scan, skipping binaries.
func scanFile(path string, report func(scanFinding)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	head, err := br.Peek(binarySniffLen)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return fmt.Errorf("%s: %w", path, err)
	}
	if bytes.IndexByte(head, 0) >= 0 {
		return nil
	}
	return apikey.Scan(br, func(fd apikey.Finding) error {
		report(scanFinding{File: path, Line: fd.Line, Column: fd.Column, Prefix: fd.Prefix, ID: fd.ID})
		return nil
	})
}
