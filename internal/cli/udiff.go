package cli

import (
	"fmt"
	"strings"
)

// maxLCSCells bounds the LCS table; larger inputs diff as one replaced block.
const maxLCSCells = 16 << 20

// edit is one line of an edit script: ' ' kept, '-' removed from a, '+' added from b.
// ai and bi are the positions in a and b before the line.
type edit struct {
	op     byte
	ai, bi int
	text   string
}

// lineEdits computes a shortest edit script from a to b: the longest common
// subsequence of lines is kept, everything else removed or added.
func lineEdits(a, b []string) []edit {
	// Common prefix and suffix need no table.
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var out []edit
	for i := 0; i < pre; i++ {
		out = append(out, edit{' ', i, i, a[i]})
	}
	out = append(out, middleEdits(a[pre:len(a)-suf], b[pre:len(b)-suf], pre, pre)...)
	for k := suf; k > 0; k-- {
		i, j := len(a)-k, len(b)-k
		out = append(out, edit{' ', i, j, a[i]})
	}
	return out
}

// middleEdits runs the LCS dynamic programme on a and b, which start at offsets
// ao and bo of the full inputs.
func middleEdits(a, b []string, ao, bo int) []edit {
	n, m := len(a), len(b)
	var out []edit
	if n*m > maxLCSCells {
		for i := range a {
			out = append(out, edit{'-', ao + i, bo, a[i]})
		}
		for j := range b {
			out = append(out, edit{'+', ao + n, bo + j, b[j]})
		}
		return out
	}
	// l[i][j] = LCS length of a[i:] and b[j:].
	l := make([][]int32, n+1)
	for i := range l {
		l[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				l[i][j] = l[i+1][j+1] + 1
			} else {
				l[i][j] = max(l[i+1][j], l[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			out = append(out, edit{' ', ao + i, bo + j, a[i]})
			i, j = i+1, j+1
		case j < m && (i == n || l[i][j+1] > l[i+1][j]):
			out = append(out, edit{'+', ao + i, bo + j, b[j]})
			j++
		default:
			out = append(out, edit{'-', ao + i, bo + j, a[i]})
			i++
		}
	}
	return out
}

// unifiedDiff renders the differences of a and b (lines without their newlines) as
// a unified diff with context lines of context; "" when they are equal.
func unifiedDiff(a, b []string, fromName, toName string, context int) string {
	edits := lineEdits(a, b)
	var changes []int
	for i, e := range edits {
		if e.op != ' ' {
			changes = append(changes, i)
		}
	}
	if len(changes) == 0 {
		return ""
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", fromName, toName)
	for k := 0; k < len(changes); {
		// Extend the hunk while the next change is within 2*context lines.
		last := k
		for last+1 < len(changes) && changes[last+1]-changes[last] <= 2*context {
			last++
		}
		start := max(0, changes[k]-context)
		end := min(len(edits), changes[last]+context+1)
		writeHunk(&sb, edits[start:end])
		k = last + 1
	}
	return sb.String()
}

func writeHunk(sb *strings.Builder, h []edit) {
	var aLen, bLen int
	for _, e := range h {
		if e.op != '+' {
			aLen++
		}
		if e.op != '-' {
			bLen++
		}
	}
	fmt.Fprintf(sb, "@@ -%s +%s @@\n", hunkRange(h[0].ai, aLen), hunkRange(h[0].bi, bLen))
	for _, e := range h {
		sb.WriteByte(e.op)
		sb.WriteString(e.text)
		sb.WriteByte('\n')
	}
}

// hunkRange renders "start,len" with a 1-based start (the line before, for an empty
// range), as diff -u does.
func hunkRange(pos, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", pos)
	}
	if n == 1 {
		return fmt.Sprintf("%d", pos+1)
	}
	return fmt.Sprintf("%d,%d", pos+1, n)
}

// splitLines splits text into lines, dropping the final newline.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
