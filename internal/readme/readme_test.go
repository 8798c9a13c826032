// Package readme holds the test that every Go code block in the
// repository's README.md compiles, so the README cannot drift from the
// API.
package readme

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fragmentImports is what a code block that is not a whole file (a few
// statements) may use; each is referenced so that none is unused.
var fragmentImports = map[string]string{
	"context":                     "context.Background",
	"fmt":                         "fmt.Println",
	"log":                         "log.Fatal",
	"net/http":                    "http.Get",
	"github.com/apikeykit/apikey": "apikey.Parse",
}

func TestREADMECodeBlocksCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build; skipped with -short")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	blocks := goBlocks(t, filepath.Join(root, "README.md"))
	if len(blocks) < 5 {
		t.Fatalf("found only %d Go blocks in README.md", len(blocks))
	}

	dir := t.TempDir()
	modFile, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	// The same requirements as the repository, with the library itself
	// replaced by this checkout.
	mod := strings.Replace(string(modFile), "module github.com/apikeykit/apikey", "module readmecheck", 1) +
		"\nrequire github.com/apikeykit/apikey v0.0.0\nreplace github.com/apikeykit/apikey => " + root + "\n"
	write(t, filepath.Join(dir, "go.mod"), mod)
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "go.sum"), string(sum))

	for i, b := range blocks {
		src := b.code
		if !strings.HasPrefix(src, "package ") {
			src = wrapFragment(src)
		}
		name := "main.go"
		if strings.Contains(src, "\nfunc Test") {
			name = "block_test.go"
		}
		write(t, filepath.Join(dir, fmt.Sprintf("b%02d", i), name), src)
	}
	cmd := exec.Command("go", "vet", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		var where strings.Builder
		for i, b := range blocks {
			fmt.Fprintf(&where, "  b%02d: README.md line %d\n", i, b.line)
		}
		t.Fatalf("README code blocks do not compile: %v\n%s\nblocks:\n%s", err, out, where.String())
	}
}

type block struct {
	line int
	code string
}

// goBlocks returns the ```go blocks of the Markdown file at path.
func goBlocks(t *testing.T, path string) []block {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []block
	var cur *block
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```go":
			cur = &block{line: n + 1}
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.code += line + "\n"
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

func wrapFragment(body string) string {
	var b strings.Builder
	b.WriteString("package main\n\nimport (\n")
	for path := range fragmentImports {
		fmt.Fprintf(&b, "\t%q\n", path)
	}
	b.WriteString(")\n\n")
	for _, ref := range fragmentImports {
		fmt.Fprintf(&b, "var _ = %s\n", ref)
	}
	b.WriteString("\nfunc main() {\n" + body + "}\n")
	return b.String()
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
