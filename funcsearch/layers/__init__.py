"""Point-wise layers that replace normalization, and the converter for any model.

* :class:`PointwiseNorm`: ``y = gamma * f(alpha * x + s) + beta`` (the paper's unified form);
  :class:`Derf` (erf) and :class:`DyT` (tanh, no shift) are named variants.
* :func:`make_norm`: the one norm factory (``"layernorm"``, ``"rmsnorm"`` or any function).
* :func:`convert_norms`: swap every LayerNorm/RMSNorm of a model, one to one (channels-first
  LayerNorm subclasses such as timm's ``LayerNorm2d`` included).
* :func:`norm_layer`: a timm-style ``norm_layer=`` factory for model constructors.

Modules: ``functions`` (what goes inside: name, expression, torch function), ``fast`` (the
erf/tanh autograd function and ``torch.compile`` plumbing), ``pointwise`` (the layers and
the factory), ``convert`` (model conversion and site recognition).
"""

from funcsearch.layers.convert import SITE_KINDS, SITE_NAMES, Replacement, convert_norms, is_channels_first, site_of
from funcsearch.layers.fast import fast_pointwise, plain_formula
from funcsearch.layers.functions import PointwiseFunction, resolve_pointwise
from funcsearch.layers.pointwise import (COMPILE_DEFAULT, ChannelsFirstPointwiseNorm, Derf, DyT, NormLayer,
                                        PointwiseNorm, make_norm, norm_layer)

__all__ = [
    "COMPILE_DEFAULT",
    "ChannelsFirstPointwiseNorm",
    "NormLayer",
    "is_channels_first",
    "norm_layer",
    "Derf",
    "DyT",
    "PointwiseFunction",
    "PointwiseNorm",
    "Replacement",
    "SITE_KINDS",
    "SITE_NAMES",
    "convert_norms",
    "fast_pointwise",
    "make_norm",
    "plain_formula",
    "resolve_pointwise",
    "site_of",
]
