"""Storage adapters shared by the pipeline handlers and the gateway.

One home for the blob store (`stores.blobs`), the track catalog (`stores.catalog`), the vector
index (`stores.vectors`) and the embedded catalog server launcher (`stores.embedded_mongo`), so
the gateway never imports handlers to reach storage. Import the submodule you need: this package
imports nothing itself, so using the blob store does not pull in the Qdrant or Mongo clients.
"""
