package convert

// gatewayAPI converts the Gateway API objects of Portico's GatewayClasses.
func (c *converter) gatewayAPI() {}
