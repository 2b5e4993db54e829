package convert

import (
	"fmt"
	"net"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"portico.dev/portico/api/v1alpha1"
)

// gwState is a Gateway of one of Portico's classes.
type gwState struct {
	obj       *gwv1.Gateway
	listeners []*lState
	// out is the Portico Gateway; nil when none is made (no valid listener).
	out *v1alpha1.Gateway
	// accepted explains a False Accepted condition ("" when accepted).
	notAccepted, notAcceptedReason string
}

// lState is one listener of a gwState and what its status will say.
type lState struct {
	spec     *gwv1.Listener
	protocol string // the Portico protocol
	kinds    []gwv1.RouteGroupKind
	// conditions that are False, by type: reason and message.
	accepted, resolved, conflicted *gwProblem
	// valid listeners are part of the Portico Gateway.
	valid    bool
	attached map[RouteKey]bool
}

// gwProblem is a reason and message of a condition.
type gwProblem struct{ reason, message string }

// gwKindsFor lists the route kinds a listener protocol carries.
func gwKindsFor(protocol gwv1.ProtocolType) []string {
	switch protocol {
	case gwv1.HTTPProtocolType, gwv1.HTTPSProtocolType:
		return []string{kindHTTPRoute, kindGRPCRoute}
	case gwv1.TLSProtocolType:
		return []string{kindTLSRoute}
	case gwv1.TCPProtocolType:
		return []string{kindTCPRoute}
	case gwv1.UDPProtocolType:
		return []string{kindUDPRoute}
	}
	return nil
}

// convertGateways makes a Portico Gateway of every Gateway of Portico's classes.
func (g *gwConv) convertGateways() {
	for _, gw := range gwSorted(g.objs.Gateways) {
		if !g.classes[string(gw.Spec.GatewayClassName)] {
			continue
		}
		st := &gwState{obj: gw}
		g.gateways[types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}] = st
		for i := range gw.Spec.Listeners {
			st.listeners = append(st.listeners, g.listener(gw, &gw.Spec.Listeners[i]))
		}
		gwMarkConflicts(st.listeners)
		if len(gw.Spec.Addresses) > 0 {
			st.notAccepted, st.notAcceptedReason = "spec.addresses is not supported: Portico's addresses come from its deployment", string(gwv1.GatewayReasonUnsupportedAddress)
			for _, l := range st.listeners {
				l.valid = false
			}
			continue
		}
		out := &v1alpha1.Gateway{
			TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindGateway},
			Metadata: v1alpha1.ObjectMeta{Name: gw.Name, Namespace: gw.Namespace, CreationTimestamp: gwTimestamp(gw.CreationTimestamp)},
		}
		for _, l := range st.listeners {
			if !l.valid {
				continue
			}
			pl := v1alpha1.Listener{Name: string(l.spec.Name), Port: int32(l.spec.Port), Protocol: l.protocol}
			if l.spec.Hostname != nil && l.protocol != v1alpha1.ProtocolTCP && l.protocol != v1alpha1.ProtocolUDP {
				pl.Hostname = strings.ToLower(string(*l.spec.Hostname))
			}
			if l.protocol == v1alpha1.ProtocolHTTPS {
				pl.TLS = &v1alpha1.ListenerTLS{CertificateRefs: g.listenerCerts(gw, l)}
				if len(pl.TLS.CertificateRefs) == 0 {
					l.valid = false
					continue
				}
			}
			out.Spec.Listeners = append(out.Spec.Listeners, pl)
		}
		if len(out.Spec.Listeners) == 0 {
			st.notAccepted, st.notAcceptedReason = "no listener is valid (see the listeners' conditions)", string(gwv1.GatewayReasonListenersNotValid)
			continue
		}
		st.out = out
		g.out.Resources.Gateways = append(g.out.Resources.Gateways, out)
	}
}

// listener checks one listener's protocol, TLS mode and route kinds.
func (g *gwConv) listener(gw *gwv1.Gateway, l *gwv1.Listener) *lState {
	st := &lState{spec: l, valid: true, attached: map[RouteKey]bool{}}
	switch l.Protocol {
	case gwv1.HTTPProtocolType:
		st.protocol = v1alpha1.ProtocolHTTP
	case gwv1.HTTPSProtocolType:
		st.protocol = v1alpha1.ProtocolHTTPS
		if l.TLS != nil && l.TLS.Mode != nil && *l.TLS.Mode != gwv1.TLSModeTerminate {
			st.accepted = &gwProblem{string(gwv1.ListenerReasonUnsupportedValue), "an HTTPS listener needs tls.mode Terminate"}
		}
	case gwv1.TLSProtocolType:
		st.protocol = v1alpha1.ProtocolTLS
		if l.TLS == nil || l.TLS.Mode == nil || *l.TLS.Mode != gwv1.TLSModePassthrough {
			st.accepted = &gwProblem{string(gwv1.ListenerReasonUnsupportedValue),
				"a TLS listener needs tls.mode Passthrough: Portico does not terminate TLS for TLSRoutes"}
		}
	case gwv1.TCPProtocolType:
		st.protocol = v1alpha1.ProtocolTCP
	case gwv1.UDPProtocolType:
		st.protocol = v1alpha1.ProtocolUDP
	default:
		st.accepted = &gwProblem{string(gwv1.ListenerReasonUnsupportedProtocol),
			fmt.Sprintf("protocol %q is not supported: one of HTTP, HTTPS, TLS, TCP, UDP", l.Protocol)}
	}
	if st.accepted != nil {
		st.valid = false
	}
	allowed := gwKindsFor(l.Protocol)
	if l.AllowedRoutes == nil || len(l.AllowedRoutes.Kinds) == 0 {
		for _, k := range allowed {
			st.kinds = append(st.kinds, gwv1.RouteGroupKind{Group: gwPtr(gwv1.Group(gatewayGroup)), Kind: gwv1.Kind(k)})
		}
		return st
	}
	var bad []string
	for _, k := range l.AllowedRoutes.Kinds {
		grp := refGroup(k.Group, gatewayGroup)
		if grp == gatewayGroup && slices.Contains(allowed, string(k.Kind)) {
			st.kinds = append(st.kinds, gwv1.RouteGroupKind{Group: gwPtr(gwv1.Group(grp)), Kind: k.Kind})
		} else {
			bad = append(bad, grp+"/"+string(k.Kind))
		}
	}
	if len(bad) > 0 {
		st.resolved = &gwProblem{string(gwv1.ListenerReasonInvalidRouteKinds),
			fmt.Sprintf("route kinds %s are not supported on a %s listener", strings.Join(bad, ", "), l.Protocol)}
	}
	return st
}

// gwMarkConflicts marks listeners that share a port but not a protocol (ProtocolConflict),
// or share a port, protocol and hostname (HostnameConflict): Portico cannot tell their
// traffic apart. Every listener involved is left out.
func gwMarkConflicts(ls []*lState) {
	for _, a := range ls {
		if a.accepted != nil {
			continue
		}
		for _, b := range ls {
			if a == b || b.accepted != nil || a.spec.Port != b.spec.Port {
				continue
			}
			switch {
			case a.protocol != b.protocol:
				a.conflicted = &gwProblem{string(gwv1.ListenerReasonProtocolConflict),
					fmt.Sprintf("listener %q uses port %d with protocol %s", b.spec.Name, b.spec.Port, b.spec.Protocol)}
			case a.protocol == v1alpha1.ProtocolTCP || a.protocol == v1alpha1.ProtocolUDP:
				a.conflicted = &gwProblem{string(gwv1.ListenerReasonProtocolConflict),
					fmt.Sprintf("listener %q uses port %d with protocol %s too", b.spec.Name, b.spec.Port, b.spec.Protocol)}
			case strings.EqualFold(string(gwDeref(a.spec.Hostname, "")), string(gwDeref(b.spec.Hostname, ""))):
				a.conflicted = &gwProblem{string(gwv1.ListenerReasonHostnameConflict),
					fmt.Sprintf("listener %q uses port %d with the same protocol and hostname", b.spec.Name, b.spec.Port)}
			}
			if a.conflicted != nil {
				a.valid = false
				break
			}
		}
	}
}

// listenerCerts resolves an HTTPS listener's certificateRefs to Portico Certificates
// in the Gateway's namespace; problems set the listener's ResolvedRefs condition.
func (g *gwConv) listenerCerts(gw *gwv1.Gateway, l *lState) []string {
	var names, msgs []string
	reason := ""
	fail := func(r, msg string) {
		if reason == "" || r == string(gwv1.ListenerReasonRefNotPermitted) {
			reason = r
		}
		msgs = append(msgs, msg)
	}
	if l.spec.TLS == nil || len(l.spec.TLS.CertificateRefs) == 0 {
		fail(string(gwv1.ListenerReasonInvalidCertificateRef), "an HTTPS listener needs tls.certificateRefs")
	} else {
		for i, ref := range l.spec.TLS.CertificateRefs {
			field := fmt.Sprintf("tls.certificateRefs[%d]", i)
			grp, kind := refGroup(ref.Group, ""), refKind(ref.Kind, "Secret")
			ns := string(gwDeref(ref.Namespace, gwv1.Namespace(gw.Namespace)))
			switch {
			case grp != "" || kind != "Secret":
				fail(string(gwv1.ListenerReasonInvalidCertificateRef), fmt.Sprintf("%s: kind %s/%s is not supported (only core Secrets)", field, grp, kind))
				continue
			case !g.refAllowed(gatewayGroup, "Gateway", gw.Namespace, "", "Secret", ns, string(ref.Name)):
				fail(string(gwv1.ListenerReasonRefNotPermitted), fmt.Sprintf("%s: Secret %s/%s is in another namespace and no ReferenceGrant allows it", field, ns, ref.Name))
				continue
			}
			name, err := g.tlsCertificate(ns, string(ref.Name), nil)
			if err != nil {
				fail(string(gwv1.ListenerReasonInvalidCertificateRef), field+": "+err.Error())
				continue
			}
			names = append(names, g.localCertificate(ns, name, gw.Namespace))
		}
	}
	if len(msgs) > 0 {
		l.resolved = &gwProblem{reason, strings.Join(msgs, "; ")}
	}
	return names
}

// localCertificate returns the name, in namespace to, of a copy of the Certificate
// name in namespace from (the name itself when from is to): Portico resolves a
// Gateway's certificate references in the Gateway's namespace.
func (g *gwConv) localCertificate(from, name, to string) string {
	if from == to {
		return name
	}
	local := from + "." + name
	key := types.NamespacedName{Namespace: to, Name: local}
	if g.backends.certs[key] != nil {
		return local
	}
	orig := g.backends.certs[types.NamespacedName{Namespace: from, Name: name}]
	cp := *orig
	cp.Metadata = v1alpha1.ObjectMeta{Name: local, Namespace: to}
	g.backends.certs[key] = &cp
	g.out.Resources.Certificates = append(g.out.Resources.Certificates, &cp)
	return local
}

// gatewayStatuses writes every Gateway's status.
func (g *gwConv) gatewayStatuses() {
	for key, st := range g.gateways {
		gen := st.obj.Generation
		var s gwv1.GatewayStatus
		for _, a := range g.opts.Addresses {
			t := gwv1.HostnameAddressType
			if net.ParseIP(a) != nil {
				t = gwv1.IPAddressType
			}
			s.Addresses = append(s.Addresses, gwv1.GatewayStatusAddress{Type: gwPtr(t), Value: a})
		}
		if st.out != nil {
			s.Conditions = []metav1.Condition{
				gwCond(string(gwv1.GatewayConditionAccepted), nil, string(gwv1.GatewayReasonAccepted), gen),
				gwCond(string(gwv1.GatewayConditionProgrammed), nil, string(gwv1.GatewayReasonProgrammed), gen),
			}
		} else {
			p := &gwProblem{st.notAcceptedReason, st.notAccepted}
			s.Conditions = []metav1.Condition{
				gwCond(string(gwv1.GatewayConditionAccepted), p, "", gen),
				gwCond(string(gwv1.GatewayConditionProgrammed), &gwProblem{string(gwv1.GatewayReasonInvalid), st.notAccepted}, "", gen),
			}
		}
		for _, l := range st.listeners {
			ls := gwv1.ListenerStatus{Name: l.spec.Name, SupportedKinds: l.kinds, AttachedRoutes: int32(len(l.attached))}
			if ls.SupportedKinds == nil {
				ls.SupportedKinds = []gwv1.RouteGroupKind{}
			}
			acc := l.accepted
			if acc == nil && l.conflicted != nil {
				acc = l.conflicted
			}
			prog := (*gwProblem)(nil)
			if !l.valid {
				msg := "the listener is not part of the configuration"
				switch {
				case acc != nil:
					msg = acc.message
				case l.resolved != nil:
					msg = l.resolved.message
				case st.notAccepted != "":
					msg = st.notAccepted
				}
				prog = &gwProblem{string(gwv1.ListenerReasonInvalid), msg}
			}
			ls.Conditions = []metav1.Condition{
				gwCond(string(gwv1.ListenerConditionAccepted), acc, string(gwv1.ListenerReasonAccepted), gen),
				gwCond(string(gwv1.ListenerConditionProgrammed), prog, string(gwv1.ListenerReasonProgrammed), gen),
				gwCond(string(gwv1.ListenerConditionResolvedRefs), l.resolved, string(gwv1.ListenerReasonResolvedRefs), gen),
			}
			conflicted := metav1.Condition{Type: string(gwv1.ListenerConditionConflicted), Status: metav1.ConditionFalse,
				Reason: string(gwv1.ListenerReasonNoConflicts), ObservedGeneration: gen}
			if l.conflicted != nil {
				conflicted.Status, conflicted.Reason, conflicted.Message = metav1.ConditionTrue, l.conflicted.reason, l.conflicted.message
			}
			ls.Conditions = append(ls.Conditions, conflicted)
			s.Listeners = append(s.Listeners, ls)
		}
		g.out.Gateways[key] = s
	}
}

// gwCond is a condition: True with okReason when p is nil, else False with p's reason.
func gwCond(typ string, p *gwProblem, okReason string, gen int64) metav1.Condition {
	if p == nil {
		return metav1.Condition{Type: typ, Status: metav1.ConditionTrue, Reason: okReason, ObservedGeneration: gen}
	}
	return metav1.Condition{Type: typ, Status: metav1.ConditionFalse, Reason: p.reason, Message: p.message, ObservedGeneration: gen}
}

// gwTimestamp renders a creationTimestamp as Portico's ObjectMeta holds it.
func gwTimestamp(t metav1.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05Z07:00")
}

func gwPtr[T any](v T) *T { return &v }
