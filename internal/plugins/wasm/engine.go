package wasm

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// compilationCache is shared by every engine of the process, so a module whose engine
// was closed (a reload that dropped and re-added it) is not compiled again.
var compilationCache = wazero.NewCompilationCache()

// engine is one compiled module in its own wazero runtime (with WASI and the proxy-wasm
// host module). Engines are shared by every plugin instance using the same module
// bytes, across snapshots, and reference-counted.
type engine struct {
	key      [sha256.Size]byte
	refs     int
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	stubbed  []string // imports answered by stubs (see README.md)
}

var (
	enginesMu sync.Mutex
	engines   = map[[sha256.Size]byte]*engine{}
)

// acquireEngine returns the engine for code, compiling it the first time.
func acquireEngine(code []byte) (*engine, error) {
	key := sha256.Sum256(code)
	enginesMu.Lock()
	defer enginesMu.Unlock()
	if e, ok := engines[key]; ok {
		e.refs++
		return e, nil
	}
	e, err := newEngine(key, code)
	if err != nil {
		return nil, err
	}
	e.refs = 1
	engines[key] = e
	return e, nil
}

// release drops a reference; the last one closes the runtime.
func (e *engine) release() {
	enginesMu.Lock()
	defer enginesMu.Unlock()
	if e.refs--; e.refs == 0 {
		delete(engines, e.key)
		_ = e.rt.Close(context.Background())
	}
}

func newEngine(key [sha256.Size]byte, code []byte) (*engine, error) {
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(compilationCache))
	e := &engine{key: key, rt: rt}
	fail := func(err error) (*engine, error) {
		_ = rt.Close(ctx)
		return nil, err
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return fail(err)
	}
	cm, err := rt.CompileModule(ctx, code)
	if err != nil {
		return fail(fmt.Errorf("compile: %w", err))
	}
	e.compiled = cm
	if err := e.instantiateHost(ctx, cm); err != nil {
		return fail(err)
	}
	return e, nil
}

// instantiateHost defines the "env" host module: the implemented proxy-wasm functions,
// plus a stub for every other function the module imports from "env", so modules built
// with a full SDK instantiate (calls to stubs return Unimplemented).
func (e *engine) instantiateHost(ctx context.Context, cm wazero.CompiledModule) error {
	b := e.rt.NewHostModuleBuilder("env")
	for _, def := range cm.ImportedFunctions() {
		mod, name, _ := def.Import()
		if mod != "env" {
			continue
		}
		if h, ok := hostFuncs[name]; ok {
			if !sameTypes(def.ParamTypes(), h.params) || !sameTypes(def.ResultTypes(), h.results) {
				return fmt.Errorf("import env.%s has an unexpected signature", name)
			}
			b.NewFunctionBuilder().WithGoModuleFunction(h.fn, h.params, h.results).Export(name)
			continue
		}
		e.stubbed = append(e.stubbed, name)
		results := def.ResultTypes()
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) {
			for i := range results {
				stack[i] = 0
			}
			if len(results) == 1 {
				stack[0] = resultUnimplemented
			}
		}), def.ParamTypes(), results).Export(name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

func sameTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
