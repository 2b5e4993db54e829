package wasm

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/api"

	"portico.dev/portico/internal/plugin"
)

// proxy-wasm WasmResult codes.
const (
	resultOK                  = 0
	resultNotFound            = 1
	resultBadArgument         = 2
	resultInvalidMemoryAccess = 6
	resultUnimplemented       = 12
)

// proxy-wasm map and buffer types.
const (
	mapRequestHeaders   = 0
	mapResponseHeaders  = 2
	bufRequestBody      = 0
	bufResponseBody     = 1
	bufVMConfiguration  = 6
	bufPluginConfigured = 7
)

type hostFunc struct {
	fn      api.GoModuleFunc
	params  []api.ValueType
	results []api.ValueType
}

var i32 = api.ValueTypeI32

// host declares a function taking n i32 parameters and returning a WasmResult.
func host(n int, f func(v *vm, a []uint64) uint64) hostFunc {
	params := make([]api.ValueType, n)
	for i := range params {
		params[i] = i32
	}
	return hostFunc{
		fn: func(ctx context.Context, _ api.Module, stack []uint64) {
			v, _ := ctx.Value(vmKey{}).(*vm)
			if v == nil {
				stack[0] = resultBadArgument
				return
			}
			stack[0] = f(v, stack[:n])
		},
		params:  params,
		results: []api.ValueType{i32},
	}
}

// hostFuncs are the implemented proxy-wasm (ABI 0.2.x) host functions; every other
// "env" import gets a stub (engine.instantiateHost).
var hostFuncs = map[string]hostFunc{
	"proxy_log":                      host(3, proxyLog),
	"proxy_get_log_level":            host(1, proxyGetLogLevel),
	"proxy_get_property":             host(4, proxyGetProperty),
	"proxy_get_buffer_bytes":         host(5, proxyGetBufferBytes),
	"proxy_set_buffer_bytes":         host(5, proxySetBufferBytes),
	"proxy_get_header_map_pairs":     host(3, proxyGetHeaderMapPairs),
	"proxy_get_header_map_size":      host(2, proxyGetHeaderMapSize),
	"proxy_get_header_map_value":     host(5, proxyGetHeaderMapValue),
	"proxy_add_header_map_value":     host(5, func(v *vm, a []uint64) uint64 { return setHeader(v, a, false) }),
	"proxy_replace_header_map_value": host(5, func(v *vm, a []uint64) uint64 { return setHeader(v, a, true) }),
	"proxy_remove_header_map_value":  host(3, proxyRemoveHeaderMapValue),
	"proxy_send_local_response":      host(8, proxySendLocalResponse),
	"proxy_get_current_time_nanoseconds": host(1, func(v *vm, a []uint64) uint64 {
		if !v.mem.WriteUint64Le(uint32(a[0]), uint64(time.Now().UnixNano())) {
			return resultInvalidMemoryAccess
		}
		return resultOK
	}),
	"proxy_set_effective_context": host(1, func(*vm, []uint64) uint64 { return resultOK }),
	"proxy_continue_stream":       host(1, func(*vm, []uint64) uint64 { return resultOK }),
	"proxy_done":                  host(0, func(*vm, []uint64) uint64 { return resultOK }),
}

var logLevels = [...]slog.Level{slog.LevelDebug - 4, slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelError + 4}

func proxyLog(v *vm, a []uint64) uint64 {
	lvl := int(uint32(a[0]))
	if lvl < 0 || lvl >= len(logLevels) {
		return resultBadArgument
	}
	msg, ok := v.read(uint32(a[1]), uint32(a[2]))
	if !ok {
		return resultInvalidMemoryAccess
	}
	l := v.p.log
	if l.Enabled(context.Background(), logLevels[lvl]) {
		attrs := []any{"plugin", v.p.name}
		if v.c != nil {
			attrs = append(attrs, "route", v.c.Route)
		}
		l.Log(context.Background(), logLevels[lvl], string(msg), attrs...)
	}
	return resultOK
}

func proxyGetLogLevel(v *vm, a []uint64) uint64 {
	lvl := uint32(0)
	for lvl < uint32(len(logLevels)-1) && !v.p.log.Enabled(context.Background(), logLevels[lvl]) {
		lvl++
	}
	if !v.mem.WriteUint32Le(uint32(a[0]), lvl) {
		return resultInvalidMemoryAccess
	}
	return resultOK
}

func proxyGetProperty(v *vm, a []uint64) uint64 {
	path, ok := v.read(uint32(a[0]), uint32(a[1]))
	if !ok {
		return resultInvalidMemoryAccess
	}
	val, found := v.property(string(path))
	if !found {
		return resultNotFound
	}
	return v.ret([]byte(val), uint32(a[2]), uint32(a[3]))
}

// property answers the supported property paths (segments separated by NUL).
func (v *vm) property(path string) (string, bool) {
	switch path {
	case "plugin_name":
		return v.p.name, true
	case "plugin_root_id":
		return v.p.rootID, true
	case "plugin_vm_id":
		return "", true
	}
	c := v.c
	if c == nil || c.Request == nil {
		return "", false
	}
	r := c.Request
	switch path {
	case "request\x00path":
		return r.URL.RequestURI(), true
	case "request\x00url_path":
		return r.URL.Path, true
	case "request\x00query":
		return r.URL.RawQuery, true
	case "request\x00method":
		return r.Method, true
	case "request\x00host":
		return r.Host, true
	case "request\x00scheme":
		if r.TLS != nil {
			return "https", true
		}
		return "http", true
	case "request\x00protocol":
		return r.Proto, true
	case "source\x00address":
		return r.RemoteAddr, true
	case "route_name":
		return c.Route, true
	case "portico\x00gateway":
		return c.Gateway, true
	case "portico\x00consumer":
		if c.Consumer == nil {
			return "", false
		}
		return c.Consumer.Name, true
	case "response\x00code":
		if c.Status == 0 {
			return "", false
		}
		return strconv.Itoa(c.Status), true
	}
	if name, ok := strings.CutPrefix(path, "request\x00headers\x00"); ok {
		return headerValue(r.Header, name)
	}
	return "", false
}

// buffer returns the buffer of type t.
func (v *vm) buffer(t uint32) ([]byte, bool) {
	switch t {
	case bufRequestBody:
		return v.body, v.c != nil
	case bufResponseBody:
		return v.respBody, v.c != nil
	case bufVMConfiguration:
		return v.p.vmConfig, true
	case bufPluginConfigured:
		return v.p.pluginConfig, true
	}
	return nil, false
}

func proxyGetBufferBytes(v *vm, a []uint64) uint64 {
	buf, ok := v.buffer(uint32(a[0]))
	if !ok {
		return resultNotFound
	}
	start, n := uint64(uint32(a[1])), uint64(uint32(a[2]))
	if start > uint64(len(buf)) {
		return resultBadArgument
	}
	buf = buf[start:min(start+n, uint64(len(buf)))]
	return v.ret(buf, uint32(a[3]), uint32(a[4]))
}

// proxySetBufferBytes replaces [start, start+size) of a body with the data.
func proxySetBufferBytes(v *vm, a []uint64) uint64 {
	var dst *[]byte
	switch uint32(a[0]) {
	case bufRequestBody:
		dst = &v.body
	case bufResponseBody:
		dst = &v.respBody
	}
	if dst == nil || v.c == nil {
		return resultNotFound
	}
	data, ok := v.read(uint32(a[3]), uint32(a[4]))
	if !ok {
		return resultInvalidMemoryAccess
	}
	start, size := uint64(uint32(a[1])), uint64(uint32(a[2]))
	old := *dst
	if start > uint64(len(old)) {
		return resultBadArgument
	}
	end := min(start+size, uint64(len(old)))
	nb := make([]byte, 0, uint64(len(old))-(end-start)+uint64(len(data)))
	*dst = append(append(append(nb, old[:start]...), data...), old[end:]...)
	return resultOK
}

// headers returns the header map of type t, nil when it is not available now.
func (v *vm) headers(t uint32) http.Header {
	if v.c == nil {
		return nil
	}
	switch t {
	case mapRequestHeaders:
		return v.c.Request.Header
	case mapResponseHeaders:
		return v.c.Header
	}
	return nil
}

func headerValue(h http.Header, name string) (string, bool) {
	vals := h[textproto.CanonicalMIMEHeaderKey(name)]
	if len(vals) == 0 {
		return "", false
	}
	if len(vals) == 1 {
		return vals[0], true
	}
	return strings.Join(vals, ","), true
}

// pseudo returns the pseudo-headers of map t (":method", ":path", … or ":status").
func (v *vm) pseudo(t uint32) [][2]string {
	if t == mapResponseHeaders {
		return [][2]string{{":status", strconv.Itoa(v.c.Status)}}
	}
	r := v.c.Request
	scheme, _ := v.property("request\x00scheme")
	return [][2]string{{":method", r.Method}, {":path", r.URL.RequestURI()}, {":authority", r.Host}, {":scheme", scheme}}
}

func proxyGetHeaderMapValue(v *vm, a []uint64) uint64 {
	h := v.headers(uint32(a[0]))
	key, ok := v.read(uint32(a[1]), uint32(a[2]))
	if h == nil || !ok {
		return resultNotFound
	}
	if len(key) > 0 && key[0] == ':' {
		for _, kv := range v.pseudo(uint32(a[0])) {
			if kv[0] == string(key) {
				return v.ret([]byte(kv[1]), uint32(a[3]), uint32(a[4]))
			}
		}
		return resultNotFound
	}
	val, found := headerValue(h, string(key))
	if !found {
		return resultNotFound
	}
	return v.ret([]byte(val), uint32(a[3]), uint32(a[4]))
}

// pairs lists map t as lower-case (name, value) pairs, pseudo-headers first.
func (v *vm) pairs(t uint32, h http.Header) [][2]string {
	out := v.pseudo(t)
	for k, vals := range h {
		lk := strings.ToLower(k)
		for _, val := range vals {
			out = append(out, [2]string{lk, val})
		}
	}
	return out
}

func proxyGetHeaderMapPairs(v *vm, a []uint64) uint64 {
	h := v.headers(uint32(a[0]))
	if h == nil {
		return resultNotFound
	}
	return v.ret(encodePairs(v.pairs(uint32(a[0]), h)), uint32(a[1]), uint32(a[2]))
}

func proxyGetHeaderMapSize(v *vm, a []uint64) uint64 {
	h := v.headers(uint32(a[0]))
	if h == nil {
		return resultNotFound
	}
	if !v.mem.WriteUint32Le(uint32(a[1]), uint32(len(encodePairs(v.pairs(uint32(a[0]), h))))) {
		return resultInvalidMemoryAccess
	}
	return resultOK
}

func setHeader(v *vm, a []uint64, replace bool) uint64 {
	h := v.headers(uint32(a[0]))
	key, ok1 := v.read(uint32(a[1]), uint32(a[2]))
	val, ok2 := v.read(uint32(a[3]), uint32(a[4]))
	if h == nil {
		return resultNotFound
	}
	if !ok1 || !ok2 {
		return resultInvalidMemoryAccess
	}
	if len(key) == 0 || key[0] == ':' {
		return resultBadArgument // pseudo-headers are read-only here
	}
	k := textproto.CanonicalMIMEHeaderKey(string(key))
	if replace {
		h[k] = []string{string(val)}
	} else {
		h[k] = append(h[k], string(val))
	}
	return resultOK
}

func proxyRemoveHeaderMapValue(v *vm, a []uint64) uint64 {
	h := v.headers(uint32(a[0]))
	key, ok := v.read(uint32(a[1]), uint32(a[2]))
	if h == nil {
		return resultNotFound
	}
	if !ok {
		return resultInvalidMemoryAccess
	}
	delete(h, textproto.CanonicalMIMEHeaderKey(string(key)))
	return resultOK
}

// proxySendLocalResponse records a local reply; the handler returns it once the
// callback is over. Arguments: status, details, body, headers (map format), grpc status.
func proxySendLocalResponse(v *vm, a []uint64) uint64 {
	if v.c == nil {
		return resultBadArgument
	}
	status := int(uint32(a[0]))
	if status < 200 || status > 599 {
		return resultBadArgument
	}
	body, ok1 := v.read(uint32(a[3]), uint32(a[4]))
	hdrs, ok2 := v.read(uint32(a[5]), uint32(a[6]))
	if !ok1 || !ok2 {
		return resultInvalidMemoryAccess
	}
	kv, ok := decodePairs(hdrs)
	if !ok {
		return resultBadArgument
	}
	rep := &plugin.Reply{Status: status, Header: make(http.Header, len(kv)), Body: append([]byte(nil), body...)}
	for _, p := range kv {
		rep.Header.Add(p[0], p[1])
	}
	v.reply = rep
	return resultOK
}

// encodePairs serialises a header map: count, (key size, value size)…, then each key
// and value NUL-terminated; integers little-endian u32.
func encodePairs(kv [][2]string) []byte {
	n := 4 + 8*len(kv)
	for _, p := range kv {
		n += len(p[0]) + len(p[1]) + 2
	}
	b := make([]byte, 0, n)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(kv)))
	for _, p := range kv {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p[0])))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p[1])))
	}
	for _, p := range kv {
		b = append(append(append(append(b, p[0]...), 0), p[1]...), 0)
	}
	return b
}

// decodePairs parses the map format of encodePairs (empty input: no pairs).
func decodePairs(b []byte) ([][2]string, bool) {
	if len(b) == 0 {
		return nil, true
	}
	if len(b) < 4 {
		return nil, false
	}
	n := uint64(binary.LittleEndian.Uint32(b))
	if 4+8*n > uint64(len(b)) {
		return nil, false
	}
	sizes, data := b[4:], b[4+8*n:]
	out := make([][2]string, n)
	for i := range out {
		ks := uint64(binary.LittleEndian.Uint32(sizes[8*i:]))
		vs := uint64(binary.LittleEndian.Uint32(sizes[8*i+4:]))
		if ks+vs+2 > uint64(len(data)) {
			return nil, false
		}
		out[i] = [2]string{string(data[:ks]), string(data[ks+1 : ks+1+vs])}
		data = data[ks+vs+2:]
	}
	return out, true
}
