package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// upgrade completes a protocol switch (WebSocket and other HTTP/1.1 Upgrades): it
// takes over the client connection, relays the upstream's 101 head, and splices
// bytes both ways until either side closes; then both connections are closed.
func (hl *httpListener) upgrade(x *exchange, w http.ResponseWriter, resp *http.Response) {
	up, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		x.fail(w, errUpgradeFailed)
		return
	}
	defer up.Close()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		x.fail(w, errUpgradeFailed)
		return
	}
	defer conn.Close()
	x.status, x.wrote = http.StatusSwitchingProtocols, true
	hl.rt.hijacked.Add(conn)
	defer hl.rt.hijacked.Remove(conn)

	h := resp.Header.Clone()
	proto := h.Get(hdrUpgrade)
	removeHopHeaders(h, true)
	h[hdrConnection] = valUpgrade
	if proto != "" {
		h[hdrUpgrade] = []string{proto}
	}
	if x.route != nil {
		x.route.resHeaders.apply(h)
	}
	if err := writeSwitchHead(brw.Writer, h); err != nil {
		return
	}
	// Bytes the client sent right after its request head are already buffered.
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		if _, err := up.Write(b); err != nil {
			return
		}
		x.bytesIn += int64(n)
	}
	in, out := splice(conn, up)
	x.bytesIn += in
	x.bytesOut += out
}

func writeSwitchHead(w *bufio.Writer, h http.Header) error {
	w.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	if err := h.Write(w); err != nil {
		return err
	}
	w.WriteString("\r\n")
	return w.Flush()
}

// splice copies client→upstream and upstream→client until one direction ends,
// then closes both so the other copy returns too. It returns the bytes moved in
// each direction.
func splice(client net.Conn, up io.ReadWriteCloser) (in, out int64) {
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			_ = client.Close()
			_ = up.Close()
		})
	}
	var nin, nout atomic.Int64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer closeBoth()
		n, _ := copyPooled(up, client)
		nin.Store(n)
	}()
	go func() {
		defer wg.Done()
		defer closeBoth()
		n, _ := copyPooled(client, up)
		nout.Store(n)
	}()
	wg.Wait()
	return nin.Load(), nout.Load()
}

func copyPooled(dst io.Writer, src io.Reader) (int64, error) {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	return io.CopyBuffer(onlyWriter{dst}, onlyReader{src}, *bp)
}

// onlyWriter and onlyReader hide ReadFrom/WriteTo so io.CopyBuffer uses the
// pooled buffer instead of allocating its own.
type onlyWriter struct{ io.Writer }
type onlyReader struct{ io.Reader }
