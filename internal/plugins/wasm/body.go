package wasm

import (
	"bytes"

	"portico.dev/portico/internal/plugin"
)

// withResponseBody is the instance type when responseBody is set: it also runs in the
// response-body phase (which makes the data plane drop Content-Length).
type withResponseBody struct{ *Wasm }

// WrapBody buffers the response body (up to maxBodyBytes) and runs
// proxy_on_response_body once, with end_of_stream set, when the body is complete.
// A larger body passes through unfiltered.
func (p withResponseBody) WrapBody(c *plugin.Context, w plugin.BodyWriter) plugin.BodyWriter {
	v := held(c)
	if v == nil || v.fn[exResponseBody] == nil {
		return w
	}
	return &bodyFilter{p: p.Wasm, v: v, c: c, next: w}
}

type bodyFilter struct {
	p       *Wasm
	v       *vm
	c       *plugin.Context
	next    plugin.BodyWriter
	buf     bytes.Buffer
	passing bool // over the limit: streaming unfiltered
}

func (b *bodyFilter) Write(p []byte) (int, error) {
	if b.passing {
		return b.next.Write(p)
	}
	if int64(b.buf.Len()+len(p)) > b.p.cfg.MaxBodyBytes {
		b.passing = true
		b.p.log.Warn("response body over maxBodyBytes: not filtered", "plugin", b.p.name, "route", b.c.Route)
		if _, err := b.next.Write(b.buf.Bytes()); err != nil {
			return 0, err
		}
		b.buf = bytes.Buffer{}
		return b.next.Write(p)
	}
	return b.buf.Write(p)
}

// Flush is a no-op while buffering (the filter needs the whole body).
func (b *bodyFilter) Flush() error {
	if b.passing {
		return b.next.Flush()
	}
	return nil
}

func (b *bodyFilter) Close() error {
	if !b.passing {
		v := b.v
		v.c, v.respBody = b.c, b.buf.Bytes()
		if _, err := v.call(exResponseBody, uint64(v.id), uint64(len(v.respBody)), 1); err != nil {
			b.p.log.Error("wasm plugin failed", "plugin", b.p.name, "error", err)
			if !b.p.cfg.FailOpen {
				v.respBody = nil
			} else {
				v.respBody = b.buf.Bytes()
			}
		}
		// A local reply is too late once the head is sent; it is ignored here.
		v.reply = nil
		if _, err := b.next.Write(v.respBody); err != nil {
			return err
		}
	}
	return b.next.Close()
}
