"""kdlab: the helper package of a course on knowledge distillation and model compression.

A folder per layer, a file per idea; imports point down the list only:

- ``cli``: the ``kdlab`` command, the course runner, the environment check;
- ``recipes``: each course track's standard set-up and cached teacher, shared by notebooks
  and benchmarks; ``grading``: the instructor's nbgrader workflow and the sandbox;
  ``plots``, ``widgets``: figures and the temperature explorer;
- ``distill``: the one training loop (``Distiller``) and every specialised distiller;
  ``quantize``: affine int8 by hand and the library flows; ``prune``: masks and shrinking;
- ``models``: the networks; ``data``: the data sets, offline first;
- ``metrics``, ``hooks``, ``bench``: scores, activations by name, latency/size/FLOPs;
- ``losses``: one family of distillation losses per file; ``report``: results shown, saved,
  read back and compared over seeds; ``cache``: trained models kept on disk;
- ``runtime``: fast mode, seeds, device, folders, and keeping warnings off stderr.
"""

from kdlab.runtime import fast_mode, pick_device, seed_everything, warnings_to_stdout

__version__ = "0.1.0"
__all__ = ["fast_mode", "pick_device", "seed_everything", "warnings_to_stdout", "__version__"]
