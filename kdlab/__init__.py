"""kdlab: the helper package of a course on knowledge distillation and model compression.

One concept per module: ``losses``, ``distill``, ``models``, ``data``, ``bench``,
``quantize``, ``quantize_flows``, ``prune``, ``metrics``, ``plots``, ``widgets``,
``cache``, ``recipes``, ``report``, ``course`` and ``runtime``.
"""

from kdlab.runtime import fast_mode, pick_device, seed_everything

__version__ = "0.1.0"
__all__ = ["fast_mode", "pick_device", "seed_everything", "__version__"]
