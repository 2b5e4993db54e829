package observe

import (
	"bufio"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// flushInterval bounds how long a log line may sit in the buffer.
const flushInterval = 200 * time.Millisecond

// AccessLog writes one JSON object per request, one per line. Lines are built by
// appending to a pooled byte slice (no reflection, no per-request allocation) and
// written through a buffer that is flushed every 200 ms and on Close, so logging
// costs the request path one short critical section, not a syscall.
//
// A nil *AccessLog is valid and logs nothing.
type AccessLog struct {
	mu     sync.Mutex
	w      *bufio.Writer
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

// AccessEntry is one finished request. Durations are reported in milliseconds with
// microsecond precision; Upstream is the endpoint address that served the request.
type AccessEntry struct {
	Time      time.Time
	RequestID string
	Gateway   string
	Route     string
	// Consumer is the API client an authentication plugin identified ("" when none).
	Consumer         string
	Method           string
	Host             string
	Path             string
	Status           int
	Upstream         string
	Duration         time.Duration
	UpstreamDuration time.Duration
	BytesIn          int64
	BytesOut         int64
	RemoteAddr       string
	UserAgent        string
}

// NewAccessLog starts an access log writing to w. A nil w returns nil: logging off.
func NewAccessLog(w io.Writer) *AccessLog {
	if w == nil {
		return nil
	}
	l := &AccessLog{
		w:    bufio.NewWriterSize(w, 64<<10),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go l.flusher()
	return l
}

func (l *AccessLog) flusher() {
	defer close(l.done)
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.mu.Lock()
			if l.w.Buffered() > 0 {
				_ = l.w.Flush()
			}
			l.mu.Unlock()
		case <-l.stop:
			return
		}
	}
}

// Close flushes what is buffered and stops the background flusher. Entries logged
// after Close are dropped.
func (l *AccessLog) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	err := l.w.Flush()
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	return err
}

var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// Log writes one entry.
func (l *AccessLog) Log(e *AccessEntry) {
	if l == nil {
		return
	}
	bp := linePool.Get().(*[]byte)
	b := AppendEntry((*bp)[:0], e)
	l.mu.Lock()
	if !l.closed {
		_, _ = l.w.Write(b)
	}
	l.mu.Unlock()
	*bp = b
	linePool.Put(bp)
}

// AppendEntry appends e as one JSON line (with its newline) to b. Exported so other
// sinks (a log query buffer, tests) can reuse the exact format.
func AppendEntry(b []byte, e *AccessEntry) []byte {
	b = append(b, `{"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendField(b, "request_id", e.RequestID)
	b = appendField(b, "gateway", e.Gateway)
	b = appendField(b, "route", e.Route)
	if e.Consumer != "" {
		b = appendField(b, "consumer", e.Consumer)
	}
	b = appendField(b, "method", e.Method)
	b = appendField(b, "host", e.Host)
	b = appendField(b, "path", e.Path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = appendField(b, "upstream", e.Upstream)
	b = append(b, `,"duration_ms":`...)
	b = appendMillis(b, e.Duration)
	b = append(b, `,"upstream_duration_ms":`...)
	b = appendMillis(b, e.UpstreamDuration)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, e.BytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, e.BytesOut, 10)
	b = appendField(b, "remote_addr", e.RemoteAddr)
	b = appendField(b, "user_agent", e.UserAgent)
	return append(b, "}\n"...)
}

func appendField(b []byte, name, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, `":`...)
	return AppendJSONString(b, value)
}

// appendMillis writes d in milliseconds with three decimals (microseconds).
func appendMillis(b []byte, d time.Duration) []byte {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	b = append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	return b
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a quoted JSON string. Control characters, quotes and
// backslashes are escaped, invalid UTF-8 becomes U+FFFD, and U+2028/U+2029 are
// escaped so a line is safe to embed in JavaScript too.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
