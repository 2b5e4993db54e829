package proxy

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
)

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyResponse sends the upstream response to the client: headers without hop-by-hop
// fields and with the route's modifiers, the body through a pooled buffer (flushed
// per read for streaming responses), then trailers.
func (x *exchange) copyResponse(w http.ResponseWriter, r *http.Request, resp *http.Response) {
	defer resp.Body.Close()
	h := w.Header()
	for k, vv := range resp.Header {
		h[k] = vv
	}
	removeHopHeaders(h, false)
	// Trailers are sent with http.TrailerPrefix after the body; an upstream's own
	// declaration is dropped so the two mechanisms do not announce keys twice.
	delete(h, hdrTrailer)
	if ids := r.Header[hdrRequestID]; len(ids) > 0 && len(h[hdrRequestID]) == 0 {
		h[hdrRequestID] = ids
	}
	if x.route != nil {
		x.route.resHeaders.apply(h)
	}
	stream := isStreaming(resp)
	// A gRPC "Trailers-Only" response carries its status in the only HEADERS
	// frame. Relayed as is, it would become ordinary headers followed by an empty
	// end of stream, which clients read as a missing status: send those fields
	// as trailers instead.
	var grpcStatus http.Header
	if _, ok := h["Grpc-Status"]; ok && r.ProtoMajor == 2 && isGRPC(resp) {
		grpcStatus = http.Header{}
		for _, k := range grpcStatusFields {
			if vv, ok := h[k]; ok {
				grpcStatus[k] = vv
				delete(h, k)
			}
		}
	}
	x.status, x.wrote = resp.StatusCode, true
	if x.idle != nil {
		x.idle.touch()
		x.idle.responding.Store(true)
	}
	w.WriteHeader(resp.StatusCode)

	var flusher http.Flusher
	if stream {
		flusher, _ = w.(http.Flusher)
		if flusher != nil {
			flusher.Flush()
		}
	}
	size := resp.ContentLength
	if r.Method == http.MethodHead {
		size = 0 // the length describes a body that is not sent
	}
	if err := x.copyBody(w, resp.Body, size, flusher); err != nil {
		if x.clientGone(r) || errors.Is(err, errClientWrite) {
			return // nothing to tell a client that left
		}
		// The upstream broke mid-body: abort so the client sees a truncated
		// response instead of a silently short one.
		panic(http.ErrAbortHandler)
	}
	for k, vv := range resp.Trailer {
		if len(vv) > 0 {
			h[http.TrailerPrefix+k] = vv
		}
	}
	for k, vv := range grpcStatus {
		h[http.TrailerPrefix+k] = vv
	}
}

var grpcStatusFields = []string{"Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin"}

func isGRPC(resp *http.Response) bool {
	return strings.HasPrefix(resp.Header.Get("Content-Type"), "application/grpc")
}

var errClientWrite = errors.New("proxy: writing to client failed")

func (x *exchange) copyBody(w io.Writer, body io.Reader, size int64, flusher http.Flusher) error {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	if flusher == nil && size > 0 && size <= int64(len(buf)) && x.idle == nil {
		// A body that fits is read whole and written once: the client connection
		// then sees one write instead of one per upstream read.
		n, rerr := io.ReadFull(body, buf[:size])
		if x.idle != nil {
			x.idle.touch()
		}
		m, werr := w.Write(buf[:n])
		x.bytesOut += int64(m)
		if werr != nil {
			return errClientWrite
		}
		if rerr != nil {
			return rerr
		}
		// Reach the end of the body so the upstream connection is released.
		if _, rerr = body.Read(buf[:1]); rerr != nil && rerr != io.EOF {
			return rerr
		}
		return nil
	}
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if x.idle != nil {
				x.idle.touch()
			}
			m, werr := w.Write(buf[:n])
			x.bytesOut += int64(m)
			if werr != nil {
				return errClientWrite
			}
			if x.idle != nil {
				x.idle.touch()
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// isStreaming reports whether the response must be flushed as it arrives rather
// than buffered: gRPC, server-sent events, and bodies of unknown length (which
// may be long polls or chunked streams).
func isStreaming(resp *http.Response) bool {
	if resp.ContentLength < 0 {
		return true
	}
	return isGRPC(resp) || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
}
