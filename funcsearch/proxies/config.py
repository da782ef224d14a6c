"""Recipe knobs shared by both proxies, and validation of user overrides.

Each proxy's config subclasses ``TrainConfig`` and adds its model and task knobs. Every
field has a default; overrides (from a search config or ``--set key=value``) are
validated by pydantic and an unknown key or a bad value becomes a ``ConfigError`` that
names the key.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from funcsearch.errors import ConfigError

C = TypeVar("C", bound="TrainConfig")


class TrainConfig(BaseModel):
    """Optimisation recipe of the shared training loop (AdamW + warmup + cosine/constant)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(28, ge=1, description="passes over the training set")
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0, description="peak learning rate")
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="cosine floor as a fraction of lr")
    warmup_epochs: float = Field(2.0, ge=0, description="linear warmup length, in epochs")
    schedule: Literal["cosine", "constant"] = "cosine"
    weight_decay: float = Field(0.05, ge=0, description="AdamW decay of matrices (not norms, biases, embeddings)")
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    adam_eps: float = Field(1e-8, gt=0)
    grad_clip: float | None = Field(1.0, gt=0, description="max global grad norm; null = off")
    ema_decay: float | None = Field(None, gt=0, lt=1, description="EMA of weights for evaluation; null = off")
    divergence_factor: float = Field(
        10.0, gt=1, description="diverged when a training loss exceeds this times the first step's loss"
    )
    alpha_gain: float = Field(
        1.0, gt=0, description="multiplies the function's alpha init at every site without its "
        "own alpha_init_<site>: a proxy whose norm inputs are smaller than full scale's starts "
        "alpha higher, so that u = alpha*x sits where full-scale training puts it"
    )
    alpha_init_attn: float | None = Field(
        None, description="alpha init of attention-input norms (absolute); null = the function's alpha_init x alpha_gain"
    )
    alpha_init_mlp: float | None = Field(
        None, description="alpha init of MLP-input norms (absolute); null = the function's alpha_init x alpha_gain"
    )
    alpha_init_final: float | None = Field(
        None, description="alpha init of the final norm (absolute); null = the function's alpha_init x alpha_gain"
    )
    layernorm_sites: list[Literal["attn", "mlp", "final"]] = Field(
        default_factory=list, description="site kinds that keep LayerNorm instead of the candidate "
        "function (the paper replaces every site: empty); a probe of where a function's effect arises"
    )

    @model_validator(mode="before")
    @classmethod
    def _finite_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                if isinstance(value, float) and not math.isfinite(value):
                    raise ValueError(f"{key} must be a finite number, got {value}")
        return data

    @model_validator(mode="after")
    def _warmup_fits(self) -> "TrainConfig":
        if self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) exceeds epochs ({self.epochs})")
        return self

    @classmethod
    def from_overrides(cls: type[C], overrides: Mapping[str, Any] | None = None,
                       *, source: str | None = None) -> C:
        """Defaults updated by ``overrides``; ``ConfigError`` naming the key on any problem."""
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(cls.model_fields))
        if unknown:
            close = difflib.get_close_matches(unknown[0], cls.model_fields, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"unknown {cls.proxy_name()} setting {unknown[0]!r} "
                f"({hint}known: {', '.join(sorted(cls.model_fields))})",
                file=source, field=unknown[0],
            )
        try:
            return cls(**overrides)
        except ValidationError as error:
            errors = error.errors()
            first = errors[0]
            key = ".".join(str(p) for p in first["loc"]) or None
            message = first["msg"].removeprefix("Value error, ")
            branches = [e for e in errors if len(e["loc"]) == 2 and e["loc"][0] == first["loc"][0]]
            if len(branches) > 1:  # a union (``bool | Literal[...]``): say every form it takes
                key = str(first["loc"][0])
                message = "; or ".join(dict.fromkeys(e["msg"] for e in branches))
            raise ConfigError(f"{message} (got {first.get('input')!r})" if key else message,
                              file=source, field=key) from None

    @classmethod
    def proxy_name(cls) -> str:
        return cls.__name__.removesuffix("Config").lower() or "proxy"


def parse_set_options(items: Iterable[str]) -> dict[str, Any]:
    """``["lr=3e-3", "schedule=constant"]`` -> ``{"lr": 0.003, "schedule": "constant"}``.

    Values are read with ``yaml.safe_load`` (so ``null``, ``true``, numbers and lists work);
    the config model validates them afterwards.
    """
    result: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"expected key=value, got {item!r}", field="--set")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f"cannot read value {text!r}: {error}", field=key) from None
        if isinstance(value, str) and _looks_numeric(value):  # yaml 1.1 misses "3e-3"
            value = float(value)
        result[key] = value
    return result


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
