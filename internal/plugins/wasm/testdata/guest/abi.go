//go:build wasip1

// A tiny hand-written proxy-wasm guest "SDK": the imports this test plugin needs and
// helpers around them. Built during the tests with GOOS=wasip1 -buildmode=c-shared.
package main

import (
	"encoding/binary"
	"unsafe"
)

//go:wasmimport env proxy_log
func proxyLog(level, ptr, size uint32) uint32

//go:wasmimport env proxy_get_property
func proxyGetProperty(pathPtr, pathSize, retPtr, retSize uint32) uint32

//go:wasmimport env proxy_get_buffer_bytes
func proxyGetBufferBytes(typ, start, max, retPtr, retSize uint32) uint32

//go:wasmimport env proxy_set_buffer_bytes
func proxySetBufferBytes(typ, start, size, ptr, n uint32) uint32

//go:wasmimport env proxy_get_header_map_value
func proxyGetHeaderMapValue(typ, kPtr, kSize, retPtr, retSize uint32) uint32

//go:wasmimport env proxy_get_header_map_pairs
func proxyGetHeaderMapPairs(typ, retPtr, retSize uint32) uint32

//go:wasmimport env proxy_add_header_map_value
func proxyAddHeaderMapValue(typ, kPtr, kSize, vPtr, vSize uint32) uint32

//go:wasmimport env proxy_replace_header_map_value
func proxyReplaceHeaderMapValue(typ, kPtr, kSize, vPtr, vSize uint32) uint32

//go:wasmimport env proxy_remove_header_map_value
func proxyRemoveHeaderMapValue(typ, kPtr, kSize uint32) uint32

//go:wasmimport env proxy_send_local_response
func proxySendLocalResponse(status, dPtr, dSize, bPtr, bSize, hPtr, hSize uint32, grpc int32) uint32

// An import the host does not implement: it must be stubbed (Unimplemented = 12).
//
//go:wasmimport env proxy_define_metric
func proxyDefineMetric(typ, namePtr, nameSize, retID uint32) uint32

// allocs keeps host-requested buffers alive until the next callback.
var allocs [][]byte

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) uint32 {
	b := make([]byte, size+1)
	allocs = append(allocs, b)
	return ptr(b)
}

func ptr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}

func sptr(s string) uint32 {
	if s == "" {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s))))
}

// hostBytes reads a host-allocated (ptr, size) result.
func hostBytes(p, n uint32) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(uintptr(p))), n)
}

func logInfo(msg string) { proxyLog(2, sptr(msg), uint32(len(msg))) }

func property(path string) (string, bool) {
	var p, n uint32
	if proxyGetProperty(sptr(path), uint32(len(path)), uint32(uintptr(unsafe.Pointer(&p))), uint32(uintptr(unsafe.Pointer(&n)))) != 0 {
		return "", false
	}
	return string(hostBytes(p, n)), true
}

func header(typ uint32, k string) (string, bool) {
	var p, n uint32
	if proxyGetHeaderMapValue(typ, sptr(k), uint32(len(k)), uint32(uintptr(unsafe.Pointer(&p))), uint32(uintptr(unsafe.Pointer(&n)))) != 0 {
		return "", false
	}
	return string(hostBytes(p, n)), true
}

func pairs(typ uint32) [][2]string {
	var p, n uint32
	if proxyGetHeaderMapPairs(typ, uint32(uintptr(unsafe.Pointer(&p))), uint32(uintptr(unsafe.Pointer(&n)))) != 0 {
		return nil
	}
	b := hostBytes(p, n)
	cnt := binary.LittleEndian.Uint32(b)
	sizes := b[4:]
	data := b[4+8*cnt:]
	out := make([][2]string, cnt)
	for i := range cnt {
		ks, vs := binary.LittleEndian.Uint32(sizes[8*i:]), binary.LittleEndian.Uint32(sizes[8*i+4:])
		out[i] = [2]string{string(data[:ks]), string(data[ks+1 : ks+1+vs])}
		data = data[ks+1+vs+1:]
	}
	return out
}

func addHeader(typ uint32, k, v string) {
	proxyAddHeaderMapValue(typ, sptr(k), uint32(len(k)), sptr(v), uint32(len(v)))
}

func replaceHeader(typ uint32, k, v string) {
	proxyReplaceHeaderMapValue(typ, sptr(k), uint32(len(k)), sptr(v), uint32(len(v)))
}

func removeHeader(typ uint32, k string) { proxyRemoveHeaderMapValue(typ, sptr(k), uint32(len(k))) }

func buffer(typ, size uint32) []byte {
	var p, n uint32
	if proxyGetBufferBytes(typ, 0, size, uint32(uintptr(unsafe.Pointer(&p))), uint32(uintptr(unsafe.Pointer(&n)))) != 0 {
		return nil
	}
	return append([]byte(nil), hostBytes(p, n)...)
}

// encodePairs serialises headers in the proxy-wasm map format.
func encodePairs(kv ...string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(kv)/2))
	for _, s := range kv {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	}
	for _, s := range kv {
		b = append(append(b, s...), 0)
	}
	return b
}
