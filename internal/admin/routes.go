package admin

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// methods maps HTTP methods to endpoints for one path shape.
type methods map[string]*endpoint

// route resolves the request path under /api/v1/ and checks the method.
func (s *server) route(rq *request) (*endpoint, error) {
	rest := strings.TrimPrefix(rq.URL.Path, "/api/v1/")
	segs := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	if slices.Contains(segs, "") {
		return nil, errorf(CodeNotFound, "no such path %s", rq.URL.Path)
	}
	var ms methods
	switch {
	case len(segs) == 1 && segs[0] == "apply":
		ms = methods{http.MethodPost: {"/api/v1/apply", s.apply}}
	case len(segs) == 1 && segs[0] == "dataplanes":
		ms = methods{http.MethodGet: {"/api/v1/dataplanes", s.dataPlanes}}
	case len(segs) == 1 && segs[0] == "tokens":
		ms = methods{http.MethodGet: {"/api/v1/tokens", s.listTokens}, http.MethodPost: {"/api/v1/tokens", s.createToken}}
	case len(segs) == 2 && segs[0] == "tokens":
		rq.name = segs[1]
		ms = methods{http.MethodDelete: {"/api/v1/tokens/{name}", s.deleteToken}}
	case len(segs) == 1 && segs[0] == "audit":
		ms = methods{http.MethodGet: {"/api/v1/audit", s.auditLog}}
	default:
		if err := s.objectPath(rq, segs); err != nil {
			return nil, err
		}
		switch len(segs) {
		case 1:
			ms = methods{http.MethodGet: {"/api/v1/{kind}", s.list}}
		case 2:
			ms = methods{
				http.MethodGet:    {"/api/v1/{kind}/{name}", s.get},
				http.MethodPut:    {"/api/v1/{kind}/{name}", s.put},
				http.MethodDelete: {"/api/v1/{kind}/{name}", s.delete},
			}
		case 3:
			switch segs[2] {
			case "history":
				ms = methods{http.MethodGet: {"/api/v1/{kind}/{name}/history", s.history}}
			case "rollback":
				ms = methods{http.MethodPost: {"/api/v1/{kind}/{name}/rollback", s.rollback}}
			}
		}
	}
	if ms == nil {
		return nil, errorf(CodeNotFound, "no such path %s", rq.URL.Path)
	}
	method := rq.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	ep := ms[method]
	if ep == nil {
		allowed := make([]string, 0, len(ms))
		for m := range ms {
			allowed = append(allowed, m)
		}
		slices.Sort(allowed)
		return nil, errorf(CodeMethodNotAllowed, "%s is not allowed on %s (allowed: %s)", rq.Method, rq.URL.Path, strings.Join(allowed, ", "))
	}
	return ep, nil
}

// objectPath reads /{kind}[/{name}[/…]] and the namespace query into rq.
func (s *server) objectPath(rq *request, segs []string) error {
	if len(segs) > 3 {
		return errorf(CodeNotFound, "no such path %s", rq.URL.Path)
	}
	kind, ok := s.kinds[segs[0]]
	if !ok {
		if segs[0] == "clusters" {
			return errorf(CodeUnknownKind, "unknown kind %q: member clusters arrive with multi-cluster support", segs[0])
		}
		known := make([]string, 0, len(s.kinds))
		for p := range s.kinds {
			known = append(known, p)
		}
		slices.Sort(known)
		return errorf(CodeUnknownKind, "unknown kind %q: one of %s", segs[0], strings.Join(known, ", "))
	}
	rq.kind = kind
	if len(segs) > 1 {
		rq.name = segs[1]
	}
	rq.namespace = rq.URL.Query().Get("namespace")
	if rq.namespace == "*" && len(segs) > 1 {
		e := errorf(CodeInvalid, "namespace \"*\" (every namespace) is only allowed on lists")
		e.Field = "namespace"
		return e
	}
	return nil
}

// dryRun reads the dryRun query parameter.
func dryRun(rq *request) (bool, error) {
	v := rq.URL.Query().Get("dryRun")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e := errorf(CodeInvalid, "dryRun must be true or false, got %q", v)
		e.Field = "dryRun"
		return false, e
	}
	return b, nil
}
