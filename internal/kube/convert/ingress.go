package convert

// ingresses converts the Ingresses of Portico's IngressClasses.
func (c *converter) ingresses() {}
