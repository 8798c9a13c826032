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
// text, as git does: a NUL byte in it means binary, unless the file is
// UTF-16 text (apikey.IsUTF16), which Scan decodes.
const binarySniffLen = 8000

// stdinName names standard input in findings and errors.
const stdinName = "(standard input)"

type scanFinding struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
	Prefix   string `json:"prefix"`
	ID       string `json:"id"`
	Encoding string `json:"encoding,omitempty"`
}

// runScan scans every path (directories recursively; "-" is standard
// input). A path it cannot read is reported on standard error and
// skipped, and the scan carries on: the exit status is 0 if nothing was
// found, 1 if keys were found, 2 if some paths could not be read, and 3
// if both.
func runScan(ctx context.Context, e *env, args []string) error {
	fset, asJSON := plainFlagSet(e, "scan", "PATH... | -")
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
			fmt.Fprintf(e.stdout, "%s:%d:%d: %s key %s%s\n", f.File, f.Line, f.Column, f.Prefix, f.ID, encodingNote(f.Encoding))
		}
	}
	failed := 0
	fail := func(err error) {
		failed++
		fmt.Fprintf(e.stderr, "apikey scan: %v\n", err)
	}
	for _, root := range paths {
		if root == "-" {
			if err := scanReader(e.stdin, stdinName, report); err != nil {
				fail(err)
			}
			continue
		}
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				fail(err) // an unreadable directory or a missing path
				return nil
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
			if err := scanFile(path, report); err != nil {
				fail(err)
			}
			return nil
		})
		if err != nil {
			return err // interrupted
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
	var msg string
	if len(found) > 0 {
		msg = fmt.Sprintf("%d API key(s) found: revoke each with 'apikey revoke ID', then remove it from the file (and from history)", len(found))
	}
	if failed > 0 {
		if msg != "" {
			msg += "\n"
		}
		msg += fmt.Sprintf("%d path(s) could not be scanned (above): keys in them may have been missed", failed)
	}
	switch {
	case len(found) > 0 && failed > 0:
		return exitStatus{exitBoth, msg}
	case len(found) > 0:
		return negative(msg)
	case failed > 0:
		return exitStatus{exitError, msg}
	}
	return nil
}

// encodingNote says how a key was written, if not as is.
func encodingNote(enc string) string {
	if enc == "" {
		return ""
	}
	return " (" + enc + ")"
}

// scanFile streams one file through apikey.Scan, skipping binaries.
func scanFile(path string, report func(scanFinding)) error {
	f, err := os.Open(path)
	if err != nil {
		return err // *fs.PathError: it names the path
	}
	defer f.Close()
	return scanReader(f, path, report)
}

// scanReader streams r, named name, through apikey.Scan, unless it is
// binary.
func scanReader(r io.Reader, name string, report func(scanFinding)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(binarySniffLen)
	if err != nil && err != io.EOF {
		return fmt.Errorf("%s: %w", name, err)
	}
	if bytes.IndexByte(head, 0) >= 0 && !apikey.IsUTF16(head) {
		return nil
	}
	err = apikey.Scan(br, func(fd apikey.Finding) error {
		report(scanFinding{File: name, Line: fd.Line, Column: fd.Column, Prefix: fd.Prefix, ID: fd.ID, Encoding: fd.Encoding})
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
