package bus

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestPublishSkipsEqualValues(t *testing.T) {
	topic := New(func(a, b int) bool { return a == b })
	if !topic.Publish(1) {
		t.Fatal("first publish not stored")
	}
	if topic.Publish(1) {
		t.Fatal("equal value stored again")
	}
	if !topic.Publish(2) {
		t.Fatal("changed value not stored")
	}
	if v, ok := topic.Latest(); !ok || v != 2 {
		t.Fatalf("latest = %v %v", v, ok)
	}
}

func TestSubscribeSeesCurrentAndNewValues(t *testing.T) {
	topic := New(func(a, b string) bool { return a == b })
	topic.Publish("a")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	var got []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		topic.Subscribe(ctx, func(v string) {
			mu.Lock()
			got = append(got, v)
			mu.Unlock()
		})
	}()
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
	topic.Publish("a") // equal: no delivery
	topic.Publish("b")
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 2 })
	cancel()
	<-done
	if got[0] != "a" || got[1] != "b" {
		t.Fatalf("got %v", got)
	}
}

func TestSubscribeCoalescesToNewest(t *testing.T) {
	topic := New(func(a, b int) bool { return a == b })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := make(chan struct{})
	seen := make(chan int, 100)
	go topic.Subscribe(ctx, func(v int) {
		if v == 1 {
			<-release
		}
		seen <- v
	})
	topic.Publish(1)
	time.Sleep(10 * time.Millisecond)
	for i := 2; i <= 50; i++ {
		topic.Publish(i)
	}
	close(release)
	if v := <-seen; v != 1 {
		t.Fatalf("first = %d", v)
	}
	if v := <-seen; v != 50 {
		t.Fatalf("after a slow subscriber the next value should be the newest, got %d", v)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}
