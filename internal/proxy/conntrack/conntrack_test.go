package conntrack

import (
	"context"
	"testing"
	"time"
)

func TestSetLifecycle(t *testing.T) {
	var s Set[int]
	if !s.Add(1) || !s.Add(2) || s.Len() != 2 {
		t.Fatal("adds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if s.WaitEmpty(ctx) {
		t.Fatal("WaitEmpty returned true with open connections")
	}
	go func() { time.Sleep(30 * time.Millisecond); s.Remove(1); s.Remove(2) }()
	if !s.WaitEmpty(context.Background()) {
		t.Fatal("WaitEmpty did not see the set empty")
	}
	s.Add(3)
	s.Seal()
	if s.Add(4) {
		t.Fatal("Add after Seal accepted")
	}
	var closed []int
	s.CloseAll(func(c int) { closed = append(closed, c) })
	if len(closed) != 1 || closed[0] != 3 {
		t.Fatalf("closed %v", closed)
	}
}
