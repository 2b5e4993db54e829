package cli

import (
	"strings"
	"testing"
)

func TestUnifiedDiff(t *testing.T) {
	a := splitLines("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\n")
	b := splitLines("a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\nn\n")
	got := unifiedDiff(a, b, "old", "new", 3)
	want := `--- old
+++ new
@@ -1,5 +1,5 @@
 a
-b
+B
 c
 d
 e
@@ -11,3 +11,4 @@
 k
 l
 m
+n
`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if d := unifiedDiff(a, a, "x", "y", 3); d != "" {
		t.Fatalf("equal inputs: %q", d)
	}
}

func TestUnifiedDiffNewAndMerged(t *testing.T) {
	got := unifiedDiff(nil, []string{"x", "y"}, "none", "file", 3)
	if got != "--- none\n+++ file\n@@ -0,0 +1,2 @@\n+x\n+y\n" {
		t.Fatalf("new object: %q", got)
	}
	// Changes 4 lines apart share one hunk with context 3.
	a := []string{"1", "2", "3", "4", "5", "6"}
	b := []string{"1", "two", "3", "4", "5", "six"}
	got = unifiedDiff(a, b, "a", "b", 3)
	if strings.Count(got, "@@ ") != 1 || !strings.Contains(got, "@@ -1,6 +1,6 @@") {
		t.Fatalf("merged hunk:\n%s", got)
	}
	// Everything removed.
	got = unifiedDiff([]string{"p", "q"}, nil, "a", "b", 3)
	if !strings.Contains(got, "@@ -1,2 +0,0 @@\n-p\n-q\n") {
		t.Fatalf("removal:\n%s", got)
	}
}

func TestLineEditsIsMinimal(t *testing.T) {
	a := splitLines("the\nquick\nbrown\nfox\njumps\nover\nthe\nlazy\ndog")
	b := splitLines("the\nslow\nbrown\nfox\nover\nthe\nsleepy\nlazy\ndog\ntoday")
	kept, removed, added := 0, 0, 0
	var rebuiltA, rebuiltB []string
	for _, e := range lineEdits(a, b) {
		switch e.op {
		case ' ':
			kept++
			rebuiltA, rebuiltB = append(rebuiltA, e.text), append(rebuiltB, e.text)
		case '-':
			removed++
			rebuiltA = append(rebuiltA, e.text)
		case '+':
			added++
			rebuiltB = append(rebuiltB, e.text)
		}
	}
	if strings.Join(rebuiltA, ",") != strings.Join(a, ",") || strings.Join(rebuiltB, ",") != strings.Join(b, ",") {
		t.Fatal("the script does not rebuild both inputs")
	}
	// LCS is the,brown,fox,over,the,lazy,dog = 7 lines.
	if kept != 7 || removed != 2 || added != 3 {
		t.Fatalf("kept %d removed %d added %d", kept, removed, added)
	}
}
