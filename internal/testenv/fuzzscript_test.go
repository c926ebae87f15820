package testenv_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// root is the repository root, seen from this package's directory.
const root = "../.."

// TestFuzzStepHasExecBudgets: scripts/test runs every fuzz target of the
// module with an execution-count budget (-fuzztime Nx), never a time
// limit, whose boundary Go 1.26's coordinator can turn into a spurious
// "context deadline exceeded" failure (golang/go#75804); and it lists
// every target (issue 14, item 8).
func TestFuzzStepHasExecBudgets(t *testing.T) {
	script, err := os.ReadFile(filepath.Join(root, "scripts", "test"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(script)
	if !strings.Contains(s, `-fuzztime "${execs}x"`) {
		t.Errorf(`the fuzz loop does not pass -fuzztime "${execs}x"`)
	}
	if regexp.MustCompile(`-fuzztime [0-9]+[smh]`).MatchString(s) {
		t.Errorf("a fuzz run has a time limit")
	}
	_, table, ok := strings.Cut(s, "<<'EOF_FUZZ'\n")
	table, _, ok2 := strings.Cut(table, "\nEOF_FUZZ")
	if !ok || !ok2 {
		t.Fatal("no EOF_FUZZ table in scripts/test")
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Errorf("table line %q: want target, package, execution budget", line)
			continue
		}
		if n, err := strconv.Atoi(f[2]); err != nil || n < 1000 {
			t.Errorf("%s: budget %q, want a count of at least 1000 executions", f[0], f[2])
		}
		listed[f[0]+" "+f[1]] = true
	}

	decl := regexp.MustCompile(`(?m)^func (Fuzz\w*)\(\w+ \*testing\.F\)`)
	found := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && fileExists(filepath.Join(path, "go.mod")) {
			return filepath.SkipDir // another module (internal/bench, internal/tools)
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		pkg := "./" + filepath.ToSlash(filepath.Dir(strings.TrimPrefix(path, root+string(filepath.Separator))))
		for _, m := range decl.FindAllStringSubmatch(string(b), -1) {
			found++
			if !listed[m[1]+" "+pkg] {
				t.Errorf("%s (%s) is not in scripts/test's fuzz table", m[1], pkg)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found == 0 || found != len(listed) {
		t.Errorf("%d fuzz targets in the module, %d in the table", found, len(listed))
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
