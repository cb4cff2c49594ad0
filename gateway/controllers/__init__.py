"""The gateway's HTTP controllers, one module per resource."""
