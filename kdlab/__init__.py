"""kdlab: the helper package of a course on knowledge distillation and model compression.

One concept per module: ``losses`` (a package, one family of losses per module),
``distill``, ``function_matching``, ``beyond_logits``, ``hooks``, ``models``,
``segmentation``, ``bert``, ``data``, ``aerial``, ``text``, ``bench``, ``quantize``,
``quantize_flows``, ``prune``, ``metrics``, ``plots``, ``widgets``, ``cache``, ``recipes``,
``report``, ``course``, ``instructor``, ``sandbox`` and ``runtime``.
"""

from kdlab.runtime import fast_mode, pick_device, seed_everything

__version__ = "0.1.0"
__all__ = ["fast_mode", "pick_device", "seed_everything", "__version__"]
