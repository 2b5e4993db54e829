package wasm

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"portico.dev/portico/internal/plugin"
)

// rootID is the root context id of every VM (proxy-wasm: the plugin's root context).
const rootID = 1

type vmKey struct{}

// vm is one instance of the module. A wasm instance is single-threaded: a vm is used by
// one request at a time (see pool), and the per-call fields below belong to that request.
type vm struct {
	p     *Wasm
	mod   api.Module
	mem   api.Memory
	ctx   context.Context // carries the vm for host functions
	alloc api.Function
	fn    [numExports]api.Function
	next  uint32 // next http context id
	stack [4]uint64

	// Per request.
	c        *plugin.Context
	id       uint32
	reply    *plugin.Reply
	body     []byte // request body being filtered (buffer type 0)
	respBody []byte // response body being filtered (buffer type 1)
	broken   bool   // a call trapped: the vm is discarded
}

// Guest exports the host calls.
const (
	exContextCreate = iota
	exVMStart
	exConfigure
	exRequestHeaders
	exRequestBody
	exResponseHeaders
	exResponseBody
	exLog
	exDone
	exDelete
	numExports
)

var exportNames = [numExports]string{
	"proxy_on_context_create", "proxy_on_vm_start", "proxy_on_configure",
	"proxy_on_request_headers", "proxy_on_request_body", "proxy_on_response_headers",
	"proxy_on_response_body", "proxy_on_log", "proxy_on_done", "proxy_on_delete",
}

// newVM instantiates the module and runs the root context's lifecycle: context
// creation, proxy_on_vm_start and proxy_on_configure with the plugin configuration.
func (p *Wasm) newVM() (*vm, error) {
	v := &vm{p: p, next: rootID + 1}
	v.ctx = context.WithValue(context.Background(), vmKey{}, v)
	cfg := wazero.NewModuleConfig().WithName("").
		WithStartFunctions("_initialize").
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().
		WithStdout(io.Discard).WithStderr(io.Discard)
	mod, err := p.eng.rt.InstantiateModule(v.ctx, p.eng.compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	v.mod, v.mem = mod, mod.Memory()
	if v.alloc = mod.ExportedFunction("proxy_on_memory_allocate"); v.alloc == nil {
		v.alloc = mod.ExportedFunction("malloc")
	}
	for i, n := range exportNames {
		v.fn[i] = mod.ExportedFunction(n)
	}
	if v.alloc == nil || v.fn[exContextCreate] == nil || v.mem == nil {
		v.close()
		return nil, errors.New("module is not a proxy-wasm plugin (missing proxy_on_memory_allocate or proxy_on_context_create)")
	}
	if _, err := v.call(exContextCreate, rootID, 0); err != nil {
		v.close()
		return nil, err
	}
	if r, err := v.call(exVMStart, rootID, uint64(len(p.vmConfig))); err != nil || (v.fn[exVMStart] != nil && r == 0) {
		v.close()
		return nil, errors.Join(errors.New("proxy_on_vm_start failed"), err)
	}
	if r, err := v.call(exConfigure, rootID, uint64(len(p.pluginConfig))); err != nil || (v.fn[exConfigure] != nil && r == 0) {
		v.close()
		return nil, errors.Join(errors.New("proxy_on_configure rejected the configuration"), err)
	}
	return v, nil
}

// call calls export ex (a no-op returning 0 when the module does not export it).
// A trap marks the vm broken.
func (v *vm) call(ex int, args ...uint64) (uint64, error) {
	f := v.fn[ex]
	if f == nil {
		return 0, nil
	}
	s := v.stack[:]
	copy(s, args)
	if err := f.CallWithStack(v.ctx, s); err != nil {
		v.broken = true
		return 0, fmt.Errorf("%s: %w", exportNames[ex], err)
	}
	return s[0], nil
}

// begin creates an http context for c.
func (v *vm) begin(c *plugin.Context) error {
	v.c, v.reply, v.body, v.respBody = c, nil, nil, nil
	v.id = v.next
	if v.next++; v.next == 0 {
		v.next = rootID + 1
	}
	_, err := v.call(exContextCreate, uint64(v.id), rootID)
	return err
}

// end finishes the http context: proxy_on_log, proxy_on_done, proxy_on_delete.
func (v *vm) end() error {
	_, err1 := v.call(exLog, uint64(v.id))
	_, err2 := v.call(exDone, uint64(v.id))
	_, err3 := v.call(exDelete, uint64(v.id))
	v.c, v.reply, v.body, v.respBody = nil, nil, nil, nil
	return errors.Join(err1, err2, err3)
}

func (v *vm) close() { _ = v.mod.Close(context.Background()) }

// guestAlloc copies b into memory allocated by the guest and returns its address.
func (v *vm) guestAlloc(b []byte) (uint32, bool) {
	var s [1]uint64
	s[0] = uint64(len(b))
	if err := v.alloc.CallWithStack(v.ctx, s[:]); err != nil {
		return 0, false
	}
	ptr := uint32(s[0])
	if len(b) > 0 && !v.mem.Write(ptr, b) {
		return 0, false
	}
	return ptr, true
}

// ret returns b to the guest through (retPtr, retSize) out-parameters.
func (v *vm) ret(b []byte, retPtr, retSize uint32) uint64 {
	ptr, ok := v.guestAlloc(b)
	if !ok || !v.mem.WriteUint32Le(retPtr, ptr) || !v.mem.WriteUint32Le(retSize, uint32(len(b))) {
		return resultInvalidMemoryAccess
	}
	return resultOK
}

// read returns guest memory [ptr, ptr+size) (a view: do not keep it).
func (v *vm) read(ptr, size uint32) ([]byte, bool) { return v.mem.Read(ptr, size) }

// pool hands out vms, at most size of them, one request at a time each.
type pool struct {
	idle  chan *vm
	slots chan struct{}
	newVM func() (*vm, error)
}

func newPool(size int, newVM func() (*vm, error)) *pool {
	return &pool{idle: make(chan *vm, size), slots: make(chan struct{}, size), newVM: newVM}
}

// get returns an idle vm, creates one while under the size, or waits for one.
func (pl *pool) get(ctx context.Context) (*vm, error) {
	select {
	case v := <-pl.idle:
		return v, nil
	default:
	}
	select {
	case v := <-pl.idle:
		return v, nil
	case pl.slots <- struct{}{}:
		v, err := pl.newVM()
		if err != nil {
			<-pl.slots
			return nil, err
		}
		return v, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// put returns v to the pool; a broken vm is closed and its slot freed.
func (pl *pool) put(v *vm) {
	if v.broken {
		v.close()
		<-pl.slots
		return
	}
	pl.idle <- v
}

// close closes the idle vms (the snapshot is retired: none is in use any more).
func (pl *pool) close() {
	for {
		select {
		case v := <-pl.idle:
			v.close()
		default:
			return
		}
	}
}
