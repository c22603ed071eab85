"""The named failures of `brandmon export`; each message says what to do about it.

All derive from ExportError, so the command line catches one type and exits non-zero.
"""

from __future__ import annotations


class ExportError(Exception):
    """Base class: the export did not produce a validated model folder."""


class CheckpointNotFoundError(ExportError):
    """The checkpoint folder is missing, or holds no config.json / weights."""


class HubUnreachableError(ExportError):
    """A hub id was given but the Hugging Face hub cannot be reached."""


class CheckpointLoadError(ExportError):
    """config.json or the weights exist but transformers cannot load them."""


class TokenizerNotFoundError(ExportError):
    """The checkpoint has no usable tokenizer (tokenizer.json or vocab files)."""


class UnsupportedModelError(ExportError):
    """The checkpoint is not a sequence-classification model that can be exported."""


class UnknownLabelError(ExportError):
    """A model label has no known canonical meaning; give --label-map."""


class OnnxExportError(ExportError):
    """optimum's ONNX exporter failed."""


class LogitsMismatchError(ExportError):
    """The fp32 ONNX logits differ from PyTorch's by more than the tolerance."""


class QuantizationAgreementError(ExportError):
    """The int8 model predicts a different label from fp32 on too many sample texts."""


class QuantizationAccuracyError(ExportError):
    """The int8 model loses more accuracy or macro-recall than allowed on the labelled file."""


class Fp16ConversionError(ExportError):
    """The fp16 (GPU) variant could not be made or disagrees with fp32."""


class FusionError(ExportError):
    """ONNX Runtime's transformer optimizer failed or found nothing to fuse in the graph."""


class FusedLogitsMismatchError(LogitsMismatchError):
    """The fused fp32 graph's logits differ from PyTorch's by more than the tolerance."""
