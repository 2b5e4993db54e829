package compression

import (
	"io"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"portico.dev/portico/internal/plugin"
)

// algo is a content coding.
type algo uint8

const (
	algoBrotli algo = iota
	algoZstd
	algoGzip
	numAlgos
)

var encodingValue = [numAlgos][]string{{"br"}, {"zstd"}, {"gzip"}}

func parseAlgo(s string) (algo, bool) {
	for a := range numAlgos {
		if encodingValue[a][0] == s {
			return a, true
		}
	}
	return 0, false
}

// level is a speed/ratio trade-off, mapped to each algorithm's own scale.
type level uint8

const (
	levelDefault level = iota
	levelFastest
	levelBest
	numLevels
)

func parseLevel(s string) (level, bool) {
	switch s {
	case "", "default":
		return levelDefault, true
	case "fastest":
		return levelFastest, true
	case "best":
		return levelBest, true
	}
	return 0, false
}

// encoder is what the three libraries' writers have in common.
type encoder interface {
	io.Writer
	Flush() error
	Close() error
	Reset(io.Writer)
}

func newEncoder(a algo, l level) encoder {
	switch a {
	case algoBrotli:
		q := [numLevels]int{4, 1, 11}[l]
		return brotli.NewWriterOptions(nil, brotli.WriterOptions{Quality: q, LGWin: 19})
	case algoZstd:
		zl := [numLevels]zstd.EncoderLevel{zstd.SpeedDefault, zstd.SpeedFastest, zstd.SpeedBestCompression}[l]
		e, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zl), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(1<<20), zstd.WithLowerEncoderMem(true))
		return e
	default:
		gl := [numLevels]int{5, gzip.BestSpeed, gzip.BestCompression}[l]
		g, _ := gzip.NewWriterLevel(nil, gl)
		return g
	}
}

// Encoders are pooled per algorithm and level: building one (brotli and zstd
// especially) costs far more than compressing a typical API response.
var encoderPools [numAlgos][numLevels]sync.Pool

// writer compresses into the next BodyWriter.
type writer struct {
	enc  encoder
	pool *sync.Pool
	sink sink
}

// sink adapts the next BodyWriter to io.Writer for the encoder.
type sink struct{ next plugin.BodyWriter }

func (s *sink) Write(b []byte) (int, error) { return s.next.Write(b) }

var writerPool = sync.Pool{New: func() any { return new(writer) }}

func newWriter(a algo, l level, next plugin.BodyWriter) *writer {
	w := writerPool.Get().(*writer)
	w.pool = &encoderPools[a][l]
	w.sink.next = next
	if e, ok := w.pool.Get().(encoder); ok {
		w.enc = e
	} else {
		w.enc = newEncoder(a, l)
	}
	w.enc.Reset(&w.sink)
	return w
}

// Write compresses b; output reaches the client as the encoder's buffers fill.
func (w *writer) Write(b []byte) (int, error) { return w.enc.Write(b) }

// Flush pushes everything written so far, compressed, to the client (streaming
// responses).
func (w *writer) Flush() error {
	if err := w.enc.Flush(); err != nil {
		return err
	}
	return w.sink.next.Flush()
}

// Close ends the compressed stream, returns the encoder to its pool and closes the
// next writer.
func (w *writer) Close() error {
	err := w.enc.Close()
	next := w.sink.next
	w.enc.Reset(io.Discard)
	w.pool.Put(w.enc)
	*w = writer{}
	writerPool.Put(w)
	if cerr := next.Close(); err == nil {
		err = cerr
	}
	return err
}
