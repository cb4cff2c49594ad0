"""Learned listening, offline: the pretrained musicnn models (MTG-UPF, ISC licence) shipped in the
`musicnn` wheel, re-implemented in PyTorch and read without TensorFlow.

`bundle` reads TF checkpoints, `weights` finds and verifies them, `melspec` is the models' front
end, `model` the network, `labels` the tag vocabularies and the groups derived from them, `core`
the warm per-process entry point.
"""
