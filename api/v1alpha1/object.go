package v1alpha1

// Object is what every kind implements: it validates itself, naming fields.
type Object interface {
	Validate() []FieldError
}

// NewObject returns an empty object of kind, or nil for a kind this version does not
// know. Loaders and the store decode into it.
func NewObject(kind string) Object {
	switch kind {
	case KindGateway:
		return &Gateway{}
	case KindRoute:
		return &Route{}
	case KindUpstream:
		return &Upstream{}
	case KindCertificate:
		return &Certificate{}
	case KindStreamRoute:
		return &StreamRoute{}
	case KindConsumer:
		return &Consumer{}
	case KindPlugin:
		return &Plugin{}
	}
	return nil
}
