package translate

import (
	"slices"
	"sort"
	"strings"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/resource"
)

// Statuses holds the conditions translation computed for every object it was given,
// keyed by object. Conditions come in a fixed order: Accepted, ResolvedRefs (kinds
// with references: Gateway, Route, StreamRoute), Programmed.
type Statuses map[resource.Key][]v1alpha1.Condition

// Errors returns one human message per problem behind a False condition, naming the
// object and the field, sorted by kind (in v1alpha1.Kinds order), namespace and name. A False
// Programmed condition is left out when the object has another False condition,
// because it only repeats that cause. The file provider rejects a configuration when
// this list is not empty.
func (s Statuses) Errors() []string {
	var out []string
	for _, key := range s.Keys() {
		conds := s[key]
		otherFalse := false
		for _, c := range conds {
			if c.Status == "False" && c.Type != v1alpha1.ConditionProgrammed {
				otherFalse = true
			}
		}
		for _, c := range conds {
			if c.Status != "False" || (c.Type == v1alpha1.ConditionProgrammed && otherFalse) {
				continue
			}
			if c.Message == "" {
				out = append(out, key.String()+": "+c.Type+" is False ("+c.Reason+")")
				continue
			}
			for msg := range strings.SplitSeq(c.Message, messageSep) {
				out = append(out, key.String()+": "+msg)
			}
		}
	}
	return out
}

// Keys returns the objects in a stable order: by kind (v1alpha1.Kinds order), then
// namespace, then name.
func (s Statuses) Keys() []resource.Key {
	keys := make([]resource.Key, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keyLess(keys[i], keys[j]) })
	return keys
}

func keyLess(a, b resource.Key) bool {
	if ka, kb := kindRank(a.Kind), kindRank(b.Kind); ka != kb {
		return ka < kb
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

func kindRank(kind string) int {
	if i := slices.Index(v1alpha1.Kinds, kind); i >= 0 {
		return i
	}
	return len(v1alpha1.Kinds)
}

// problem is one reason a condition is False.
type problem struct {
	reason, message string
}

// objectStatus accumulates what translation learns about one object.
type objectStatus struct {
	accepted []problem
	resolved []problem
	hasRefs  bool // emit ResolvedRefs
	// programmed is set when the object contributed to the snapshot.
	programmed bool
	// notProgrammed explains a False Programmed condition.
	notProgrammed string
}

// statusBuilder collects object statuses during one translation.
type statusBuilder map[resource.Key]*objectStatus

func (b statusBuilder) get(key resource.Key) *objectStatus {
	st := b[key]
	if st == nil {
		st = &objectStatus{}
		b[key] = st
	}
	return st
}

func (b statusBuilder) reject(key resource.Key, reason, message string) {
	st := b.get(key)
	st.accepted = append(st.accepted, problem{reason, message})
}

func (b statusBuilder) unresolved(key resource.Key, reason, message string) {
	st := b.get(key)
	st.resolved = append(st.resolved, problem{reason, message})
}

// finish renders the conditions.
func (b statusBuilder) finish() Statuses {
	out := Statuses{}
	for key, st := range b {
		conds := []v1alpha1.Condition{condition(v1alpha1.ConditionAccepted, v1alpha1.ReasonAccepted, st.accepted)}
		if st.hasRefs {
			conds = append(conds, condition(v1alpha1.ConditionResolved, v1alpha1.ReasonResolved, st.resolved))
		}
		if st.programmed {
			conds = append(conds, v1alpha1.Condition{Type: v1alpha1.ConditionProgrammed, Status: "True", Reason: v1alpha1.ReasonProgrammed})
		} else {
			msg := st.notProgrammed
			if msg == "" {
				msg = "not part of the configuration"
			}
			conds = append(conds, v1alpha1.Condition{Type: v1alpha1.ConditionProgrammed, Status: "False",
				Reason: v1alpha1.ReasonNotProgrammed, Message: msg})
		}
		out[key] = conds
	}
	return out
}

// condition is True with okReason when there are no problems, else False with the
// first problem's reason and every message.
func condition(typ, okReason string, problems []problem) v1alpha1.Condition {
	if len(problems) == 0 {
		return v1alpha1.Condition{Type: typ, Status: "True", Reason: okReason}
	}
	msgs := make([]string, len(problems))
	for i, p := range problems {
		msgs[i] = p.message
	}
	return v1alpha1.Condition{Type: typ, Status: "False", Reason: problems[0].reason, Message: strings.Join(msgs, messageSep)}
}

// messageSep joins the problems of one condition; Errors splits on it, so no single
// problem's message may contain it.
const messageSep = "; "
