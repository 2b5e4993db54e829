// Package ops serves the operational endpoints on their own address (127.0.0.1:9901 by
// default), apart from proxied traffic: health, readiness, Prometheus metrics, the active
// configuration and profiling.
package ops

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Sources supplies what the endpoints show. Each func may be nil.
type Sources struct {
	// Ready reports whether the process serves a configuration.
	Ready func() bool
	// Config returns the active configuration, already redacted, or nil.
	Config func() any
	// Reload returns the state of the last reload attempts.
	Reload func() any
	// Upstreams returns the health of every upstream's endpoints.
	Upstreams func() any
	// Gatherer is the Prometheus registry behind /metrics.
	Gatherer prometheus.Gatherer
}

// Handler returns the mux for the ops address.
func Handler(src Sources) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if src.Ready != nil && !src.Ready() {
			http.Error(w, "no configuration applied yet", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	if src.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(src.Gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /debug/config", jsonOf(src.Config))
	mux.HandleFunc("GET /debug/reload", jsonOf(src.Reload))
	mux.HandleFunc("GET /debug/upstreams", jsonOf(src.Upstreams))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

func jsonOf(get func() any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		var v any
		if get != nil {
			v = get()
		}
		if v == nil {
			http.Error(w, `{"error":{"code":"not_ready","message":"nothing to show yet"}}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
	}
}
