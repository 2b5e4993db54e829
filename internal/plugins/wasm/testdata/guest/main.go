//go:build wasip1

// Command guest is the proxy-wasm test plugin: it tags requests with a header carrying
// its configuration, denies requests that carry x-deny with a local 403, logs, reads
// properties, tags responses, upper-cases request bodies and redacts "secret" in
// response bodies.
package main

import (
	"bytes"
	"strconv"
)

func main() {}

var config string

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

//go:wasmexport proxy_on_context_create
func onContextCreate(id, parent uint32) { allocs = allocs[:0] }

//go:wasmexport proxy_on_vm_start
func onVMStart(root, size uint32) uint32 {
	var id uint32
	if r := proxyDefineMetric(0, sptr("m"), 1, 0); r != 12 {
		logInfo("stub returned " + strconv.Itoa(int(r)))
		_ = id
		return 0
	}
	return 1
}

//go:wasmexport proxy_on_configure
func onConfigure(root, size uint32) uint32 {
	config = string(buffer(7, size))
	name, _ := property("plugin_name")
	logInfo("configured " + name + " with " + config)
	return 1
}

//go:wasmexport proxy_on_request_headers
func onRequestHeaders(id, n, eos uint32) uint32 {
	allocs = allocs[:0]
	path, _ := property("request\x00path")
	method, _ := property("request\x00method")
	logInfo("request " + method + " " + path)
	if _, boom := header(0, "x-panic"); boom {
		panic("guest panic requested")
	}
	if _, deny := header(0, "x-deny"); deny {
		body := "denied by wasm"
		hdrs := encodePairs("x-denied-by", "wasm")
		proxySendLocalResponse(403, sptr("denied"), 6, sptr(body), uint32(len(body)), ptr(hdrs), uint32(len(hdrs)), -1)
		return 1
	}
	addHeader(0, "x-wasm", config)
	addHeader(0, "x-wasm-path", path)
	addHeader(0, "x-wasm-pairs", strconv.Itoa(len(pairs(0))))
	if v, ok := header(0, "x-replace"); ok {
		replaceHeader(0, "x-replace", v+"-replaced")
	}
	removeHeader(0, "x-remove")
	if addr, ok := property("source\x00address"); ok {
		addHeader(0, "x-wasm-source", addr)
	}
	return 0
}

//go:wasmexport proxy_on_request_body
func onRequestBody(id, size, eos uint32) uint32 {
	allocs = allocs[:0]
	if eos == 0 {
		return 1
	}
	b := bytes.ToUpper(buffer(0, size))
	proxySetBufferBytes(0, 0, size, ptr(b), uint32(len(b)))
	return 0
}

//go:wasmexport proxy_on_response_headers
func onResponseHeaders(id, n, eos uint32) uint32 {
	allocs = allocs[:0]
	addHeader(2, "x-wasm-response", "seen")
	removeHeader(2, "x-secret")
	return 0
}

//go:wasmexport proxy_on_response_body
func onResponseBody(id, size, eos uint32) uint32 {
	allocs = allocs[:0]
	if eos == 0 {
		return 1
	}
	b := bytes.ReplaceAll(buffer(1, size), []byte("secret"), []byte("[redacted]"))
	proxySetBufferBytes(1, 0, size, ptr(b), uint32(len(b)))
	return 0
}

//go:wasmexport proxy_on_log
func onLog(id uint32) {}

//go:wasmexport proxy_on_done
func onDone(id uint32) uint32 { return 1 }

//go:wasmexport proxy_on_delete
func onDelete(id uint32) {}
