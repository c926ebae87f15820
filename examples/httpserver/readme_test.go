package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestREADMEWiringBuilds compiles the README's wiring program as it is
// written (every variable defined, every import used), as package main of
// a directory inside the module (go build -overlay).
func TestREADMEWiringBuilds(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	readme := string(b)
	start := strings.Index(readme, "## Wiring into an existing `net/http` server")
	if start < 0 {
		t.Fatal("README.md has no wiring section")
	}
	body, ok := strings.CutPrefix(readme[start+strings.Index(readme[start:], "```go\n"):], "```go\n")
	end := strings.Index(body, "```")
	if !ok || end < 0 {
		t.Fatal("README.md's wiring section has no go block")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte(body[:end]), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	pkg := filepath.Join(root, "examples", "readme-wiring")
	overlay, _ := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(pkg, "main.go"): src}})
	ov := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ov, overlay, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-overlay", ov, "-o", os.DevNull, "./examples/readme-wiring")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("the README's wiring program does not build: %v\n%s", err, out)
	}
}
