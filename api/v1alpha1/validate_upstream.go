package v1alpha1

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"time"
)

// Validate checks an Upstream on its own and returns every problem found.
func (u *Upstream) Validate() []FieldError {
	var errs fieldErrors
	validateMeta(&errs, u.TypeMeta, &u.Metadata, KindUpstream)
	s := &u.Spec
	validateEndpoints(&errs, s)
	switch s.Protocol {
	case "", UpstreamHTTP, UpstreamH2C, UpstreamHTTPS, UpstreamH2:
	default:
		errs.add("spec.protocol", "unknown protocol %q: one of http, h2c, https, h2", s.Protocol)
	}
	validateLoadBalancer(&errs, s.LoadBalancer)
	validatePluginRefs(&errs, "spec.plugins", s.Plugins)
	if hc := s.HealthCheck; hc != nil {
		if hc.Active != nil {
			validateActiveCheck(&errs, "spec.healthCheck.active", hc.Active)
		}
		if hc.Passive != nil {
			validatePassiveCheck(&errs, "spec.healthCheck.passive", hc.Passive)
		}
	}
	if s.TLS != nil {
		validateUpstreamTLS(&errs, s.Protocol, s.TLS)
	}
	if cb := s.CircuitBreaker; cb != nil {
		checkNonNegative(&errs, "spec.circuitBreaker.maxConnections", cb.MaxConnections)
		checkNonNegative(&errs, "spec.circuitBreaker.maxPendingRequests", cb.MaxPendingRequests)
		checkNonNegative(&errs, "spec.circuitBreaker.maxRequests", cb.MaxRequests)
		checkNonNegative(&errs, "spec.circuitBreaker.maxRetries", cb.MaxRetries)
	}
	if t := s.Timeouts; t != nil {
		checkDuration(&errs, "spec.timeouts.connect", t.Connect, true)
		checkDuration(&errs, "spec.timeouts.idle", t.Idle, true)
		checkDuration(&errs, "spec.timeouts.responseHeader", t.ResponseHeader, true)
	}
	if b := s.RetryBudget; b != nil {
		checkPercent(&errs, "spec.retryBudget.percent", b.Percent)
		if b.MinRetriesPerSecond != nil {
			checkNonNegative(&errs, "spec.retryBudget.minRetriesPerSecond", *b.MinRetriesPerSecond)
		}
		checkDuration(&errs, "spec.retryBudget.interval", b.Interval, true)
	}
	switch s.ProxyProtocol {
	case "", "v1", "v2":
	default:
		errs.add("spec.proxyProtocol", "unknown version %q: one of v1, v2 (or leave it empty)", s.ProxyProtocol)
	}
	return errs
}

// validateEndpoints checks the static endpoint list or DNS discovery (exactly one).
func validateEndpoints(errs *fieldErrors, s *UpstreamSpec) {
	switch {
	case len(s.Endpoints) == 0 && s.DNS == nil:
		errs.add("spec.endpoints", "at least one endpoint is required (or set dns)")
	case len(s.Endpoints) > 0 && s.DNS != nil:
		errs.add("spec.dns", "set endpoints or dns, not both")
	}
	seen := map[string]int{}
	for i, e := range s.Endpoints {
		p := at("spec.endpoints", i)
		checkHostPort(errs, p+".address", e.Address)
		if j, dup := seen[e.Address]; dup {
			errs.add(p+".address", "duplicate of %s", at("spec.endpoints", j))
		} else {
			seen[e.Address] = i
		}
		if e.Weight != nil && (*e.Weight < 1 || *e.Weight > 1000000) {
			errs.add(p+".weight", "must be between 1 and 1000000, got %d", *e.Weight)
		}
	}
	d := s.DNS
	if d == nil {
		return
	}
	switch {
	case d.Name == "":
		errs.add("spec.dns.name", "required: the name to resolve")
	case strings.Contains(d.Name, ":") || hasSpaceOrControl(d.Name):
		errs.add("spec.dns.name", "must be a DNS name without a port, got %q", d.Name)
	}
	switch {
	case d.SRV && d.Port != 0:
		errs.add("spec.dns.port", "not allowed with srv (SRV records carry the ports)")
	case !d.SRV && d.Port == 0:
		errs.add("spec.dns.port", "required (unless srv is true)")
	case d.Port < 0 || d.Port > 65535:
		errs.add("spec.dns.port", "must be between 1 and 65535, got %d", d.Port)
	}
	checkDuration(errs, "spec.dns.refresh", d.Refresh, true)
}

// validateLoadBalancer checks the algorithm and the options that go with it.
func validateLoadBalancer(errs *fieldErrors, lb *LoadBalancer) {
	if lb == nil {
		return
	}
	switch lb.Algorithm {
	case "", LBRoundRobin, LBRandom, LBLeastRequest, LBConsistentHash, LBEWMA:
	default:
		errs.add("spec.loadBalancer.algorithm", "unknown algorithm %q: one of round-robin, random, least-request, consistent-hash, ewma", lb.Algorithm)
	}
	h := lb.HashOn
	switch {
	case lb.Algorithm == LBConsistentHash && h == nil:
		errs.add("spec.loadBalancer.hashOn", "required with consistent-hash: one of header, cookie, sourceIP, path")
	case lb.Algorithm != LBConsistentHash && h != nil:
		errs.add("spec.loadBalancer.hashOn", "only allowed with algorithm consistent-hash")
	}
	if h != nil {
		n := 0
		for _, set := range []bool{h.Header != "", h.Cookie != "", h.SourceIP, h.Path} {
			if set {
				n++
			}
		}
		if n != 1 {
			errs.add("spec.loadBalancer.hashOn", "set exactly one of header, cookie, sourceIP, path (got %d)", n)
		}
		if h.Header != "" && !validHeaderName(h.Header) {
			errs.add("spec.loadBalancer.hashOn.header", "invalid header name %q", h.Header)
		}
		if h.Cookie != "" && !validHeaderName(h.Cookie) {
			errs.add("spec.loadBalancer.hashOn.cookie", "invalid cookie name %q (an HTTP token)", h.Cookie)
		}
	}
	checkDuration(errs, "spec.loadBalancer.slowStart", lb.SlowStart, true)
	if a := lb.SessionAffinity; a != nil {
		if a.Cookie == "" {
			errs.add("spec.loadBalancer.sessionAffinity.cookie", "required: the cookie name")
		} else if !validHeaderName(a.Cookie) {
			errs.add("spec.loadBalancer.sessionAffinity.cookie", "invalid cookie name %q (an HTTP token)", a.Cookie)
		}
		checkDuration(errs, "spec.loadBalancer.sessionAffinity.ttl", a.TTL, true)
	}
	if l := lb.Locality; l != nil {
		if strings.TrimSpace(l.Zone) == "" {
			errs.add("spec.loadBalancer.locality.zone", "required: the zone label value of local endpoints")
		}
		checkPercent(errs, "spec.loadBalancer.locality.minHealthyPercent", l.MinHealthyPercent)
	}
}

// validateActiveCheck checks an active health check: exactly one probe kind.
func validateActiveCheck(errs *fieldErrors, p string, a *ActiveHealthCheck) {
	n := 0
	for _, set := range []bool{a.HTTP != nil, a.TCP != nil, a.GRPC != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		errs.add(p, "set exactly one of http, tcp, grpc (got %d)", n)
	}
	if h := a.HTTP; h != nil {
		checkPathValue(errs, p+".http.path", h.Path, false)
		if h.Host != "" && hasSpaceOrControl(h.Host) {
			errs.add(p+".http.host", "must not contain spaces or control characters")
		}
		for i, code := range h.ExpectedStatuses {
			if code < 100 || code > 599 {
				errs.add(at(p+".http.expectedStatuses", i), "must be between 100 and 599, got %d", code)
			}
		}
	}
	checkDuration(errs, p+".interval", a.Interval, true)
	checkDuration(errs, p+".timeout", a.Timeout, true)
	checkDuration(errs, p+".jitter", a.Jitter, false)
	checkThreshold(errs, p+".healthyThreshold", a.HealthyThreshold)
	checkThreshold(errs, p+".unhealthyThreshold", a.UnhealthyThreshold)
}

// validatePassiveCheck checks outlier detection.
func validatePassiveCheck(errs *fieldErrors, p string, ps *PassiveHealthCheck) {
	checkNonNegative(errs, p+".consecutiveFailures", ps.ConsecutiveFailures)
	checkNonNegative(errs, p+".consecutive5xx", ps.Consecutive5xx)
	checkNonNegative(errs, p+".consecutiveTimeouts", ps.ConsecutiveTimeouts)
	checkDuration(errs, p+".ejectionTime", ps.EjectionTime, true)
	checkDuration(errs, p+".maxEjectionTime", ps.MaxEjectionTime, true)
	base, okBase := parseDuration(ps.EjectionTime)
	limit, okMax := parseDuration(ps.MaxEjectionTime)
	if okBase && okMax && limit < base {
		errs.add(p+".maxEjectionTime", "must not be less than ejectionTime (%s)", ps.EjectionTime)
	}
	checkPercent(errs, p+".maxEjectedPercent", ps.MaxEjectedPercent)
}

// validateUpstreamTLS checks TLS towards the endpoints, including the client
// certificate for mTLS (both halves, parsed and matching).
func validateUpstreamTLS(errs *fieldErrors, protocol string, t *UpstreamTLS) {
	switch protocol {
	case UpstreamHTTPS, UpstreamH2:
	case "":
		errs.add("spec.tls", "needs protocol https or h2 (the default protocol is http)")
	default:
		errs.add("spec.tls", "needs protocol https or h2, got %q", protocol)
	}
	if t.SNI != "" {
		checkHost(errs, "spec.tls.sni", t.SNI, false)
	}
	if t.CACertificate != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(t.CACertificate)) {
		errs.add("spec.tls.caCertificate", "no PEM certificate found")
	}
	switch {
	case t.ClientCertificate != "" && t.ClientKey == "":
		errs.add("spec.tls.clientKey", "required with clientCertificate")
	case t.ClientCertificate == "" && t.ClientKey != "":
		errs.add("spec.tls.clientCertificate", "required with clientKey")
	case t.ClientCertificate != "":
		if _, err := tls.X509KeyPair([]byte(t.ClientCertificate), []byte(t.ClientKey)); err != nil {
			errs.add("spec.tls.clientCertificate", "invalid client certificate or key: %v", err)
		}
	}
}

// checkPercent checks an optional percentage.
func checkPercent(errs *fieldErrors, field string, v *int32) {
	if v != nil && (*v < 0 || *v > 100) {
		errs.add(field, "must be between 0 and 100, got %d", *v)
	}
}

func checkNonNegative(errs *fieldErrors, field string, v int32) {
	if v < 0 {
		errs.add(field, "must not be negative, got %d", v)
	}
}

// checkThreshold checks a count where 0 means "the default" and anything set is ≥ 1.
func checkThreshold(errs *fieldErrors, field string, v int32) {
	if v < 0 {
		errs.add(field, "must be at least 1, got %d", v)
	}
}

// parseDuration returns a valid, positive duration; ok is false otherwise (including
// when v is empty), so comparisons only run on values that passed their own checks.
func parseDuration(v string) (time.Duration, bool) {
	d, err := time.ParseDuration(v)
	return d, err == nil && d > 0
}
