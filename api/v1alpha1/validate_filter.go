package v1alpha1

import "strings"

// validateFilters checks each filter's payload against its type, and the rules that
// span filters and matches (Gateway API): each type at most once, URLRewrite and
// RequestRedirect not together, and ReplacePrefixMatch only when every match is a
// PathPrefix match (otherwise there is no matched prefix to replace).
func validateFilters(errs *fieldErrors, s *RouteSpec) {
	seen := map[string]int{}
	for i := range s.Filters {
		f := &s.Filters[i]
		p := at("spec.filters", i)
		validateFilterPayload(errs, p, f)
		if j, dup := seen[f.Type]; dup && f.Type != "" {
			errs.add(p+".type", "duplicate of %s: each filter type may appear once", at("spec.filters", j))
		} else {
			seen[f.Type] = i
		}
		if f.Type == FilterRequestRedirect {
			if j, ok := seen[FilterURLRewrite]; ok {
				errs.add(p+".type", "RequestRedirect cannot be combined with the URLRewrite in %s", at("spec.filters", j))
			}
		}
		if f.Type == FilterURLRewrite {
			if j, ok := seen[FilterRequestRedirect]; ok {
				errs.add(p+".type", "URLRewrite cannot be combined with the RequestRedirect in %s", at("spec.filters", j))
			}
		}
		var pm *PathModifier
		var pmField string
		switch {
		case f.Type == FilterURLRewrite && f.URLRewrite != nil:
			pm, pmField = f.URLRewrite.Path, p+".urlRewrite.path"
		case f.Type == FilterRequestRedirect && f.RequestRedirect != nil:
			pm, pmField = f.RequestRedirect.Path, p+".requestRedirect.path"
		}
		if pm != nil && pm.Type == ReplacePrefixMatch {
			for j, m := range s.Matches {
				if m.Path != nil && m.Path.Type != "" && m.Path.Type != PathPrefix {
					errs.add(pmField+".type", "ReplacePrefixMatch needs every match to be a PathPrefix match, but %s is %s",
						at("spec.matches", j), m.Path.Type)
					break
				}
			}
		}
	}
}

// validateFilterPayload checks that exactly the payload named by the type is set.
func validateFilterPayload(errs *fieldErrors, p string, f *RouteFilter) {
	payloads := []struct {
		typ, field string
		set        bool
	}{
		{FilterRequestHeaderModifier, "requestHeaderModifier", f.RequestHeaderModifier != nil},
		{FilterResponseHeaderModifier, "responseHeaderModifier", f.ResponseHeaderModifier != nil},
		{FilterURLRewrite, "urlRewrite", f.URLRewrite != nil},
		{FilterRequestRedirect, "requestRedirect", f.RequestRedirect != nil},
	}
	known := false
	for _, pl := range payloads {
		switch {
		case pl.typ == f.Type:
			known = true
			if !pl.set {
				errs.add(p+"."+pl.field, "required when type is %s", f.Type)
			}
		case pl.set:
			errs.add(p+"."+pl.field, "must not be set when type is %q", f.Type)
		}
	}
	if !known {
		errs.add(p+".type", "unknown filter type %q: one of RequestHeaderModifier, ResponseHeaderModifier, URLRewrite, RequestRedirect", f.Type)
	}
	if f.RequestHeaderModifier != nil {
		validateHeaderModifier(errs, p+".requestHeaderModifier", f.RequestHeaderModifier)
	}
	if f.ResponseHeaderModifier != nil {
		validateHeaderModifier(errs, p+".responseHeaderModifier", f.ResponseHeaderModifier)
	}
	if rw := f.URLRewrite; rw != nil {
		rp := p + ".urlRewrite"
		if rw.Hostname == "" && rw.Path == nil {
			errs.add(rp, "set hostname, path or both")
		}
		if rw.Hostname != "" {
			checkHost(errs, rp+".hostname", rw.Hostname, false)
		}
		if rw.Path != nil {
			validatePathModifier(errs, rp+".path", rw.Path)
		}
	}
	if rd := f.RequestRedirect; rd != nil {
		validateRedirect(errs, p+".requestRedirect", rd)
	}
}

func validateHeaderModifier(errs *fieldErrors, p string, h *HeaderModifier) {
	if len(h.Set) == 0 && len(h.Add) == 0 && len(h.Remove) == 0 {
		errs.add(p, "set, add or remove at least one header")
	}
	for _, list := range []struct {
		field   string
		headers []Header
	}{{p + ".set", h.Set}, {p + ".add", h.Add}} {
		seen := map[string]int{}
		for i, hd := range list.headers {
			hp := at(list.field, i)
			if !validHeaderName(hd.Name) {
				errs.add(hp+".name", "invalid header name %q", hd.Name)
			}
			if strings.ContainsAny(hd.Value, "\r\n\x00") {
				errs.add(hp+".value", "must not contain CR, LF or NUL")
			}
			key := strings.ToLower(hd.Name)
			if j, dup := seen[key]; dup {
				errs.add(hp+".name", "duplicate of %s (header names are case-insensitive)", at(list.field, j))
			} else {
				seen[key] = i
			}
		}
	}
	for i, name := range h.Remove {
		if !validHeaderName(name) {
			errs.add(at(p+".remove", i), "invalid header name %q", name)
		}
	}
}

func validatePathModifier(errs *fieldErrors, p string, m *PathModifier) {
	switch m.Type {
	case ReplaceFullPath:
		checkPathValue(errs, p+".replaceFullPath", m.ReplaceFullPath, false)
		if m.ReplacePrefixMatch != "" {
			errs.add(p+".replacePrefixMatch", "must not be set when type is ReplaceFullPath")
		}
	case ReplacePrefixMatch:
		checkPathValue(errs, p+".replacePrefixMatch", m.ReplacePrefixMatch, true)
		if m.ReplaceFullPath != "" {
			errs.add(p+".replaceFullPath", "must not be set when type is ReplacePrefixMatch")
		}
	case "":
		errs.add(p+".type", "required: ReplaceFullPath or ReplacePrefixMatch")
	default:
		errs.add(p+".type", "unknown path modifier %q: ReplaceFullPath or ReplacePrefixMatch", m.Type)
	}
}

func validateRedirect(errs *fieldErrors, p string, rd *RequestRedirect) {
	switch rd.Scheme {
	case "", "http", "https":
	default:
		errs.add(p+".scheme", "must be http or https, got %q", rd.Scheme)
	}
	if rd.Hostname != "" {
		checkHost(errs, p+".hostname", rd.Hostname, false)
	}
	if rd.Port < 0 || rd.Port > 65535 {
		errs.add(p+".port", "must be between 1 and 65535, got %d", rd.Port)
	}
	if rd.Path != nil {
		validatePathModifier(errs, p+".path", rd.Path)
	}
	switch rd.StatusCode {
	case 0, 301, 302, 303, 307, 308:
	default:
		errs.add(p+".statusCode", "must be one of 301, 302, 303, 307, 308, got %d", rd.StatusCode)
	}
}
