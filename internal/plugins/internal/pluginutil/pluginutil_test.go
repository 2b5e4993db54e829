package pluginutil

import (
	"encoding/json"
	"testing"
	"time"
)

func TestRegistryKeepsReleasedValuesForTheGracePeriod(t *testing.T) {
	r := NewRegistry()
	now := time.Unix(0, 0)
	r.now = func() time.Time { return now }
	a := r.Acquire("a", func() any { return new(int) })
	r.Release("a")
	now = now.Add(30 * time.Second)
	if r.Acquire("a", func() any { return new(int) }) != a {
		t.Fatal("value dropped within the grace period")
	}
	r.Release("a")
	now = now.Add(2 * time.Minute)
	r.Acquire("b", func() any { return new(int) })
	if r.Len() != 1 {
		t.Fatalf("unused value kept: %d", r.Len())
	}
}

func TestDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{`"1m"`: time.Minute, `90`: 90 * time.Second, `"1h30m"`: 90 * time.Minute} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil || time.Duration(d) != want {
			t.Errorf("%s: %v %v", in, time.Duration(d), err)
		}
	}
	var d Duration
	if json.Unmarshal([]byte(`"soon"`), &d) == nil || json.Unmarshal([]byte(`true`), &d) == nil {
		t.Error("bad durations accepted")
	}
}
