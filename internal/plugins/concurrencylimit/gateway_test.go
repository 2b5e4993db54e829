package concurrencylimit_test

import (
	"net/http"
	"sync"
	"testing"

	_ "portico.dev/portico/internal/plugins/concurrencylimit"
	"portico.dev/portico/internal/plugins/internal/gatewaytest"
)

// TestThroughTheDataPlane holds two requests at the backend with max 2: a third is
// refused with 503, and once they finish the slots are free again.
func TestThroughTheDataPlane(t *testing.T) {
	arrived := make(chan struct{}, 2)
	release := make(chan struct{})
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			arrived <- struct{}{}
			<-release
		}
	})
	base := gatewaytest.Start(t, backend, gatewaytest.Spec("concurrency-limit", `{"max":2,"key":"route"}`))
	c := gatewaytest.Client()
	get := func(path string) int {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Add(1)
		go func() { defer wg.Done(); codes[i] = get("/hold") }()
	}
	<-arrived
	<-arrived
	if got := get("/"); got != 503 {
		t.Fatalf("third concurrent request: %d, want 503", got)
	}
	close(release)
	wg.Wait()
	if codes[0] != 200 || codes[1] != 200 {
		t.Fatalf("held requests: %v", codes)
	}
	if got := get("/"); got != 200 {
		t.Fatalf("after the held requests finished: %d", got)
	}
}
