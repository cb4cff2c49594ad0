"""JetStream topology as code: names, stream and consumer configs, replay, the embedded server."""
