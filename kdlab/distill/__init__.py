"""Distillation trainers: one training loop and the specialised distillers beside it.

- ``trainer``: :class:`Distiller` (frozen teacher, history, progress, device, learning-rate
  schedule), :class:`History` and :func:`freeze`; with ``teacher=None`` it trains on the
  labels alone, so teachers and baselines use the same loop;
- ``feature``: :class:`FeatureDistiller`, a loss term on activations captured by name
  (FitNets, attention transfer, RKD, similarity-preserving);
- ``decoupled``: :class:`DecoupledDistiller` (DKD);
- ``online``: :class:`MutualDistiller` (DML) and :class:`NativeEnsembleDistiller` (ONE);
- ``segmentation``: :class:`SegmentationDistiller`, pixel-wise KD with an ignore index;
- ``views``: the four ways to make a teacher's targets on augmented views (Beyer et al. 2022);
- ``bert``: :class:`MaskedLMTrainer` (MLM pre-training), :class:`BertFineTuner` and
  :class:`BertDistiller` (DistilBERT's triple loss), with ``pretrain_mlm``, ``fine_tune``
  and ``distil`` as one-call wrappers.

Each specialised distiller overrides :meth:`Distiller.loss_parts` and, where its batches or
task differ, the hooks ``prepare_batch`` (check and move a batch; None skips it),
``examples`` (how many examples a batch counts for), ``train_accuracy`` and ``validate``;
``loss_key`` names the part that is minimised. The loop, optimiser step, learning-rate
schedule, history, progress bar and device handling are shared.
"""

from kdlab.distill.bert import BertDistiller, BertFineTuner, MaskedLMTrainer
from kdlab.distill.decoupled import DecoupledDistiller
from kdlab.distill.feature import FeatureDistiller
from kdlab.distill.online import MutualDistiller, NativeEnsembleDistiller
from kdlab.distill.segmentation import SegmentationDistiller, median_frequency_weights
from kdlab.distill.trainer import Distiller, History, freeze

__all__ = [
    "Distiller",
    "History",
    "freeze",
    "FeatureDistiller",
    "DecoupledDistiller",
    "MutualDistiller",
    "NativeEnsembleDistiller",
    "SegmentationDistiller",
    "median_frequency_weights",
    "MaskedLMTrainer",
    "BertFineTuner",
    "BertDistiller",
]
