"""Packed multi-task models: one file that serves every task of a run.

``clbench export RUN_DIR`` writes it (:mod:`clbench.packed.export`); ``load_packed``
reads it back with plain torch, without Avalanche or the harness's training code::

    from clbench.packed import load_packed

    model = load_packed("packed.safetensors")
    model.tasks                               # task names, in training order
    model.predict("cubs", ["bird.jpg"])       # top-5 (class, probability) per image
    logits = model(x, "cubs")                 # a preprocessed batch
"""

from clbench.packed.fileformat import FORMAT
from clbench.packed.model import PackedModel, load_packed

__all__ = ["FORMAT", "PackedModel", "load_packed"]
