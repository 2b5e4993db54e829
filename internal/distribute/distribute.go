// Package distribute carries IR snapshots from the control plane to remote data planes:
// one gRPC stream per data plane over mutual TLS, full snapshots or deltas tagged with
// versions, acks and nacks back, heartbeats both ways, and the last good snapshot kept on
// the data plane's disk so it can start while the control plane is down.
//
// There is no protoc step: the service is a hand-written grpc.ServiceDesc whose messages
// are the Go structs below, carried by a JSON codec registered under the content subtype
// "json" and forced on both sides. The IR is already JSON-shaped (its version is a hash of
// its JSON), so the wire form is the same bytes an operator sees in /debug/config.
package distribute

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"

	"portico.dev/portico/internal/ir"
)

// ServiceName is the gRPC service of the distribution API.
const ServiceName = "portico.distribute.v1.Distribution"

// Full method names of the service.
const (
	streamMethod    = "/" + ServiceName + "/Stream"
	bootstrapMethod = "/" + ServiceName + "/Bootstrap"
)

// MaxMessageBytes bounds one gRPC message in both directions: enough for a snapshot of
// 100k routes in JSON.
const MaxMessageBytes = 256 << 20

// ClientMessage is what a data plane sends on the Stream; exactly one field is set.
type ClientMessage struct {
	Hello     *Hello     `json:"hello,omitempty"`
	Ack       *Ack       `json:"ack,omitempty"`
	Nack      *Nack      `json:"nack,omitempty"`
	Heartbeat *Heartbeat `json:"heartbeat,omitempty"`
}

// Hello opens a stream: who the data plane is, which gateways it serves (labels) and the
// version of the snapshot it already runs (from its cache), so an unchanged snapshot is
// not sent again.
type Hello struct {
	ID      string            `json:"id"`
	Labels  map[string]string `json:"labels,omitempty"`
	Version string            `json:"version,omitempty"`
}

// Ack says the data plane applied a version and now runs it.
type Ack struct {
	Version string `json:"version"`
}

// Nack says the data plane could not use a version and keeps running its last good one.
// Resync asks for a full snapshot: the delta did not rebuild to the announced version.
type Nack struct {
	Version string `json:"version"`
	Error   string `json:"error"`
	Resync  bool   `json:"resync,omitempty"`
}

// Heartbeat is sent every heartbeat interval; the server marks a data plane stale after
// three missed ones.
type Heartbeat struct {
	Time time.Time `json:"time"`
}

// ServerMessage is what the control plane sends on the Stream; exactly one field is set.
type ServerMessage struct {
	Snapshot *SnapshotMessage `json:"snapshot,omitempty"`
	Delta    *Delta           `json:"delta,omitempty"`
	// Synced says the version the data plane announced in Hello is current: nothing to apply.
	Synced *Synced `json:"synced,omitempty"`
}

// SnapshotMessage is a full snapshot.
type SnapshotMessage struct {
	Version  string       `json:"version"`
	Snapshot *ir.Snapshot `json:"snapshot"`
}

// Synced confirms the data plane already runs Version.
type Synced struct {
	Version string `json:"version"`
}

// Delta turns the snapshot BaseVersion into Version. Each section lists the items that
// are new or changed (Upserts), the names that left (Removals) and the full order of
// names in the new snapshot (Order); unchanged items come from the base.
//
// Listeners travel as shells, without their virtual hosts: an upserted listener has an
// empty VirtualHosts, and the virtual hosts of every listener whose list changed (or
// that is new) travel in VirtualHosts, keyed by hostname. A listener without an entry
// there keeps the virtual hosts it has in the base, so a route change re-sends one
// virtual host.
type Delta struct {
	Version      string                  `json:"version"`
	BaseVersion  string                  `json:"baseVersion"`
	Listeners    Section[ir.Listener]    `json:"listeners"`
	VirtualHosts []VirtualHostSection    `json:"virtualHosts,omitempty"`
	Upstreams    Section[ir.Upstream]    `json:"upstreams"`
	Certificates Section[ir.Certificate] `json:"certificates"`
	StreamRoutes Section[ir.StreamRoute] `json:"streamRoutes"`
	Consumers    Section[ir.Consumer]    `json:"consumers"`
}

// Section is the change to one list of a snapshot, keyed by the items' names.
type Section[T any] struct {
	Upserts  []T      `json:"upserts,omitempty"`
	Removals []string `json:"removals,omitempty"`
	Order    []string `json:"order,omitempty"`
}

// VirtualHostSection is the change to the virtual hosts of one listener, keyed by
// hostname; Order is the listener's full list of hostnames in the new snapshot.
type VirtualHostSection struct {
	Listener string `json:"listener"`
	Section[ir.VirtualHost]
}

// BootstrapRequest asks for a data-plane client certificate: the shared bootstrap token,
// a PEM certificate signing request and the data plane's name (the CSR's common name).
type BootstrapRequest struct {
	Token  string `json:"token"`
	CSRPEM string `json:"csrPEM"`
	Name   string `json:"name"`
}

// BootstrapResponse carries the signed certificate and the CA that signed it.
type BootstrapResponse struct {
	CertPEM string `json:"certPEM"`
	CAPEM   string `json:"caPEM,omitempty"`
}

// Codec is the JSON gRPC codec of the distribution service, registered under "json".
type Codec struct{}

// encoded is a message already encoded by the codec, so one encoding of a snapshot can
// be sent to many data planes.
type encoded []byte

// Name is the content subtype: application/grpc+json.
func (Codec) Name() string { return "json" }

// Marshal encodes v as JSON; pre-encoded messages pass through unchanged.
func (Codec) Marshal(v any) ([]byte, error) {
	if b, ok := v.(encoded); ok {
		return b, nil
	}
	return json.Marshal(v)
}

// Unmarshal decodes JSON into v.
func (Codec) Unmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("distribute: decode %T: %w", v, err)
	}
	return nil
}

func init() { encoding.RegisterCodec(Codec{}) }

// distributionServer is the handler type of the service description.
type distributionServer interface {
	stream(grpc.ServerStream) error
	bootstrap(context.Context, *BootstrapRequest) (*BootstrapResponse, error)
}

// serviceDesc describes the service by hand, in place of protoc-generated code.
var serviceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*distributionServer)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "Stream",
		Handler:       func(srv any, ss grpc.ServerStream) error { return srv.(distributionServer).stream(ss) },
		ServerStreams: true,
		ClientStreams: true,
	}},
	Methods: []grpc.MethodDesc{{
		MethodName: "Bootstrap",
		Handler:    bootstrapHandler,
	}},
	Metadata: "portico/distribute/v1",
}

func bootstrapHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	req := new(BootstrapRequest)
	if err := dec(req); err != nil {
		return nil, err
	}
	call := func(ctx context.Context, r any) (any, error) {
		return srv.(distributionServer).bootstrap(ctx, r.(*BootstrapRequest))
	}
	if interceptor == nil {
		return call(ctx, req)
	}
	return interceptor(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: bootstrapMethod}, call)
}

// callOptions are used by every client call: the JSON codec and the message size limits.
func callOptions() grpc.DialOption {
	return grpc.WithDefaultCallOptions(
		grpc.ForceCodec(Codec{}),
		grpc.MaxCallRecvMsgSize(MaxMessageBytes),
		grpc.MaxCallSendMsgSize(MaxMessageBytes),
	)
}
