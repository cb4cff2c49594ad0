"""Search examples → vectors on the workers: the gateway never runs models or analysis, so it asks
over NATS request/reply and a worker answers with the pools it already runs for its stages.

`answers` holds what is computed (CLIP for text and images, the pipeline's audio vector for a
clip); `service` is the thin NATS side (queue-group subscriptions, bounded concurrency, replies).
"""
