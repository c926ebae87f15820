package tokenkms_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// compliance is the matrix that godoc rule references point to.
const compliance = "docs/COMPLIANCE.md"

var (
	// ruleRef is a rule number as the code cites it: R4, R2.4, T2.
	ruleRef = regexp.MustCompile(`\b(R[0-9]+(?:\.[0-9]+)?|T[0-9]+)\b`)
	// matrixRule is a rule the matrix restates: a table row's first cell
	// or a section heading.
	matrixRule = regexp.MustCompile(`(?m)^(?:\| |## )(R[1-7](?:\.[0-9])?|T[1-5])\b`)
	// citedTest is a test the matrix names, with its subtest if any.
	citedTest = regexp.MustCompile("`(?:[a-z0-9]+\\.)?((?:Test|Fuzz)[A-Z][A-Za-z0-9]*)(?:/([^`]+))?`")
)

// TestComplianceMatrix keeps docs/COMPLIANCE.md and the code in step:
// every rule number cited in a Go file is a rule of the matrix, and every
// test the matrix names exists (a subtest, as a case name of that test's
// table).
func TestComplianceMatrix(t *testing.T) {
	raw, err := os.ReadFile(compliance)
	if err != nil {
		t.Fatalf("read the matrix: %v", err)
	}
	matrix := string(raw)
	rules := map[string]bool{}
	for _, m := range matrixRule.FindAllStringSubmatch(matrix, -1) {
		rules[m[1]] = true
	}
	if len(rules) < 30 {
		t.Fatalf("%s restates %d rules, want every rule of R1 to R7", compliance, len(rules))
	}

	var tests strings.Builder // every _test.go and test-support file, concatenated
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, ref := range ruleRef.FindAllString(string(src), -1) {
			if !rules[ref] {
				t.Errorf("%s cites %s, which %s does not restate", path, ref, compliance)
			}
		}
		tests.Write(src)
		return nil
	})
	if err != nil {
		t.Fatalf("walk the repository: %v", err)
	}

	src := tests.String()
	cited := citedTest.FindAllStringSubmatch(matrix, -1)
	if len(cited) == 0 {
		t.Fatalf("%s names no test", compliance)
	}
	for _, m := range cited {
		name, sub := m[1], m[2]
		if !strings.Contains(src, "func "+name+"(") {
			t.Errorf("%s names %s, which no Go file declares", compliance, name)
			continue
		}
		if sub != "" && !strings.Contains(src, `"`+strings.ReplaceAll(sub, "_", " ")+`"`) {
			t.Errorf("%s names %s/%s, and no test table has the case %q", compliance, name, sub, strings.ReplaceAll(sub, "_", " "))
		}
	}
}
