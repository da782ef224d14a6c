"""The DiT proxy: a small class-conditional diffusion Transformer (after DiT's ``models.py``).

Images are patchified into tokens with a fixed 2-D sin-cos position embedding; the
timestep and class embeddings are summed into a conditioning vector ``c``; each block
modulates its (replaced) norms with shift / scale / gate vectors regressed from ``c``
(adaLN): ``x + gate * attn(modulate(norm_attn(x), shift, scale))`` and the same for the
MLP. The model predicts the DDPM noise ``eps`` and is trained with MSE.

Every norm site comes from the ``norm`` factory (``affine=norm_affine``, off as in DiT).
The recipe follows the Derf paper's DiT protocol where the proxy can: ``adaln_zero_init``
(recorded in the config of every run) zero-initialises the adaLN modulation by the paper's
rule by default (``norms_only``: kept for LayerNorm / RMSNorm models, removed for point-wise
ones, which it hurt at full scale), or always as DiT does (``true``), or never (``false``);
and gradients are not clipped (``grad_clip: null``), as in the paper's DiT recipe. Both are
the defaults since 2026-12-01 (docs/calibration.md, tenth round); earlier studies pin
``adaln_zero_init: true, grad_clip: 1.0``.

Metrics:
- per epoch: ``heldout_loss``, the noise MSE on the test split with noise and timesteps
  drawn once from ``heldout_seed`` (the same for every trial), so it is deterministic;
- at the end: ``fid``, the Frechet distance in the feature space of a small classifier
  trained once on the same data (see ``fid.py``), between the training images and
  ``fid_samples`` class-balanced samples of a deterministic DDIM sampler
  (``sample_steps`` steps, eta 0, noise from ``sample_seed``).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from funcsearch.errors import ConfigError
from funcsearch.layers.pointwise import PointwiseNorm
from funcsearch.proxies.config import TrainConfig
from funcsearch.proxies.data import ImageDataset, load_dataset
from funcsearch.metrics import Metric
from funcsearch.proxies.blocks import MLP, Attention
from funcsearch.proxies.device import Runtime
from funcsearch.proxies.proxy import NormFactory, Proxy
from funcsearch.proxies.training import EpochCallback, ProxyRun, TrainTask, train


class DiTConfig(TrainConfig):
    """Every knob of the DiT proxy; defaults sized for about a minute on one core."""

    epochs: int = Field(30, ge=1)
    lr: float = Field(6e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    alpha_gain: float = Field(
        2.0, gt=0, description="multiplies the function's alpha init (0.5 -> 1.0): dit's norm "
        "inputs are small, and at 2 u = alpha*x ends near unit scale as at full scale "
        "(docs/calibration.md, fifth round)"
    )
    patch_size: int = Field(2, ge=1)
    dim: int = Field(64, ge=1)
    depth: int = Field(4, ge=1)
    heads: int = Field(4, ge=1)
    mlp_ratio: float = Field(4.0, gt=0)
    norm_affine: bool = Field(False, description="learnable gamma/beta in the norms (off in DiT)")
    adaln_zero_init: bool | Literal["norms_only"] = Field(
        "norms_only", description="zero-init the adaLN modulation: norms_only (the Derf paper's "
        "rule: only for LayerNorm / RMSNorm models), true (DiT's choice, for every model) or false"
    )
    grad_clip: float | None = Field(
        None, gt=0, description="max global grad norm; null = off (the paper's DiT recipe does not clip)"
    )
    zero_init_output: bool = Field(True, description="zero-init the final linear layer")
    diffusion_steps: int = Field(1000, ge=2)
    beta_start: float = Field(1e-4, gt=0, lt=1)
    beta_end: float = Field(0.02, gt=0, lt=1)
    heldout_repeats: int = Field(2, ge=1, description="noise draws per held-out image")
    heldout_seed: int = 1234
    fid_samples: int = Field(1000, ge=0, description="samples for the FID (0 = skip the FID)")
    sample_steps: int = Field(25, ge=1, le=50, description="DDIM steps (at most 50)")
    sample_seed: int = 0
    eval_batch_size: int = Field(500, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> "DiTConfig":
        if self.beta_end <= self.beta_start:
            raise ValueError(f"beta_end ({self.beta_end}) must exceed beta_start ({self.beta_start})")
        if self.dim % self.heads or self.dim % 4:
            raise ValueError(f"dim ({self.dim}) must be divisible by heads ({self.heads}) and by 4")
        return self


# --------------------------------------------------------------------------- model
def _zero_init_adaln(rule: bool | str, norm: nn.Module) -> bool:
    """Whether a model whose norm sites are like ``norm`` zero-initialises its adaLN."""
    if rule == "norms_only":
        return not isinstance(norm, PointwiseNorm)
    return bool(rule)


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def sincos_embedding(positions: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """``(N,)`` positions -> ``(N, dim)`` sin-cos features (dim even)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=positions.device) / half)
    angles = positions.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


def sincos_2d(grid_h: int, grid_w: int, dim: int) -> Tensor:
    """Fixed 2-D position embedding ``(1, grid_h * grid_w, dim)``: half rows, half columns."""
    rows, cols = torch.meshgrid(torch.arange(grid_h), torch.arange(grid_w), indexing="ij")
    embed = torch.cat([sincos_embedding(rows.flatten(), dim // 2),
                       sincos_embedding(cols.flatten(), dim // 2)], dim=1)
    return embed[None]


class TimestepEmbedder(nn.Module):
    """Scalar timesteps -> sin-cos features -> MLP."""

    def __init__(self, dim: int, frequency_dim: int = 64) -> None:
        super().__init__()
        self.frequency_dim = frequency_dim
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(sincos_embedding(t, self.frequency_dim))


class DiTBlock(nn.Module):
    """Transformer block with adaLN modulation after each (replaced) norm."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, norm: NormFactory, affine: bool) -> None:
        super().__init__()
        self.norm_attn = norm(dim, "attn", affine=affine)
        self.attn = Attention(dim, heads, dropout=0.0)
        self.norm_mlp = norm(dim, "mlp", affine=affine)
        self.mlp = MLP(dim, int(dim * mlp_ratio), dropout=0.0)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift_attn, scale_attn, gate_attn, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_attn.unsqueeze(1) * self.attn(modulate(self.norm_attn(x), shift_attn, scale_attn))
        x = x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm_mlp(x), shift_mlp, scale_mlp))
        return x


class FinalLayer(nn.Module):
    """Final (replaced) norm, adaLN shift/scale, linear projection back to patch pixels."""

    def __init__(self, dim: int, patch_pixels: int, norm: NormFactory, affine: bool) -> None:
        super().__init__()
        self.norm_final = norm(dim, "final", affine=affine)
        self.linear = nn.Linear(dim, patch_pixels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class DiT(nn.Module):
    """Noisy image, timestep, class -> predicted noise."""

    def __init__(self, config: DiTConfig, channels: int, image_size: tuple[int, int],
                 num_classes: int, norm: NormFactory) -> None:
        super().__init__()
        height, width = image_size
        p = self.patch_size = config.patch_size
        if height % p or width % p:
            raise ConfigError(f"patch_size {p} does not divide the image size {height}x{width}",
                              field="patch_size")
        self.channels, self.grid = channels, (height // p, width // p)
        self.x_embedder = nn.Conv2d(channels, config.dim, kernel_size=p, stride=p)
        self.register_buffer("pos_embed", sincos_2d(*self.grid, config.dim), persistent=False)
        self.t_embedder = TimestepEmbedder(config.dim)
        self.y_embedder = nn.Embedding(num_classes, config.dim)
        self.blocks = nn.ModuleList(
            DiTBlock(config.dim, config.heads, config.mlp_ratio, norm, config.norm_affine)
            for _ in range(config.depth)
        )
        self.final_layer = FinalLayer(config.dim, p * p * channels, norm, config.norm_affine)
        self._initialize(config)

    def _initialize(self, config: DiTConfig) -> None:
        """DiT's init: xavier linears, N(0, 0.02) embeddings, optional zeroed adaLN / output."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        weight = self.x_embedder.weight
        nn.init.xavier_uniform_(weight.view(weight.shape[0], -1))
        nn.init.zeros_(self.x_embedder.bias)
        nn.init.normal_(self.y_embedder.weight, std=0.02)
        for layer in (self.t_embedder.mlp[0], self.t_embedder.mlp[2]):
            nn.init.normal_(layer.weight, std=0.02)
        if _zero_init_adaln(config.adaln_zero_init, self.final_layer.norm_final):
            for block in [*self.blocks, self.final_layer]:
                nn.init.zeros_(block.adaLN_modulation[-1].weight)
                nn.init.zeros_(block.adaLN_modulation[-1].bias)
        if config.zero_init_output:
            nn.init.zeros_(self.final_layer.linear.weight)
            nn.init.zeros_(self.final_layer.linear.bias)

    def unpatchify(self, x: Tensor) -> Tensor:
        """``(B, tokens, p*p*C)`` -> ``(B, C, H, W)``."""
        (grid_h, grid_w), p, c = self.grid, self.patch_size, self.channels
        x = x.reshape(x.shape[0], grid_h, grid_w, p, p, c)
        return torch.einsum("nhwpqc->nchpwq", x).reshape(x.shape[0], c, grid_h * p, grid_w * p)

    def forward(self, x: Tensor, t: Tensor, y: Tensor) -> Tensor:
        x = self.x_embedder(x).flatten(2).transpose(1, 2) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder(y)
        for block in self.blocks:
            x = block(x, c)
        return self.unpatchify(self.final_layer(x, c))


# --------------------------------------------------------------------------- diffusion
class Diffusion:
    """DDPM forward process with a linear beta schedule, and a deterministic DDIM sampler."""

    def __init__(self, steps: int, beta_start: float, beta_end: float,
                 device: torch.device | str = "cpu") -> None:
        self.steps = steps
        betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float64, device=device)
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0).float()

    def add_noise(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        a = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    @torch.no_grad()
    def ddim_sample(self, model: nn.Module, labels: Tensor, shape: tuple[int, ...],
                    sample_steps: int, generator: torch.Generator) -> Tensor:
        """DDIM (eta = 0) from pure noise over ``sample_steps`` evenly spaced timesteps."""
        device = self.alphas_cumprod.device
        x = torch.randn(len(labels), *shape, generator=generator, device=generator.device).to(device)
        timesteps = torch.linspace(self.steps - 1, 0, sample_steps).round().long().unique_consecutive().tolist()
        one = torch.tensor(1.0, device=device)
        for i, t in enumerate(timesteps):
            a_t = self.alphas_cumprod[t]
            a_prev = self.alphas_cumprod[timesteps[i + 1]] if i + 1 < len(timesteps) else one
            eps = model(x, torch.full((len(labels),), t, device=device), labels).float()
            x0 = ((x - (1 - a_t).sqrt() * eps) / a_t.sqrt()).clamp(-1, 1)
            eps = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()
            x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
        return x


# --------------------------------------------------------------------------- task
def run(config: DiTConfig, norm: NormFactory, dataset: ImageDataset, seed: int,
        on_epoch: EpochCallback | None = None, runtime: Runtime | None = None) -> ProxyRun:
    """Build the model (global RNG seeded by the caller, built on the CPU so that every device
    starts from the same weights), move it and the data to the runtime's device, train it and
    measure it. The fixed evaluation draws (held-out noise, sampler noise) are made on the CPU
    and moved, so every device evaluates on the same noise; training draws use the trial's
    generator on its device."""
    runtime = runtime or Runtime()
    device = runtime.torch_device
    model = DiT(config, dataset.channels, dataset.image_size, dataset.num_classes, norm).to(device)
    diffusion = Diffusion(config.diffusion_steps, config.beta_start, config.beta_end, device)
    train_x0 = (dataset.train_images * 2 - 1).to(device)
    train_labels = dataset.train_labels.to(device)

    heldout = torch.Generator().manual_seed(config.heldout_seed)
    held_x0 = (dataset.test_images * 2 - 1).repeat(config.heldout_repeats, 1, 1, 1)
    held_labels = dataset.test_labels.repeat(config.heldout_repeats)
    held_t = torch.randint(0, diffusion.steps, (len(held_labels),), generator=heldout)
    held_noise = torch.randn(held_x0.shape, generator=heldout)
    held_x0, held_labels, held_t, held_noise = (v.to(device) for v in (held_x0, held_labels, held_t, held_noise))
    held_xt = diffusion.add_noise(held_x0, held_t, held_noise)

    def batch_loss(model: nn.Module, batch: Tensor, generator: torch.Generator) -> Tensor:
        x0 = train_x0[batch]
        t = torch.randint(0, diffusion.steps, (len(batch),), generator=generator, device=generator.device)
        noise = torch.randn(x0.shape, generator=generator, device=generator.device)
        prediction = model(diffusion.add_noise(x0, t, noise), t, train_labels[batch])
        return F.mse_loss(prediction.float(), noise)

    def per_epoch(model: nn.Module) -> dict[str, float]:
        total = 0.0
        for s in range(0, len(held_labels), config.eval_batch_size):
            window = slice(s, s + config.eval_batch_size)
            prediction = model(held_xt[window], held_t[window], held_labels[window]).float()
            total += float(F.mse_loss(prediction, held_noise[window], reduction="sum"))
        return {"heldout_loss": total / held_noise.numel()}

    task = TrainTask(model, len(train_labels), batch_loss, per_epoch)
    outcome = train(task, config, seed, on_epoch, runtime)
    final: dict[str, float] = {}
    details: dict[str, float | int | str] = {"parameters": sum(p.numel() for p in model.parameters())}
    if outcome.status == "ok" and config.fid_samples:
        from funcsearch.proxies.fid import frechet_distance_to_data

        outcome.eval_model.eval()
        with runtime.autocast():
            samples = sample_images(outcome.eval_model, diffusion, dataset, config)
        fid, classifier = frechet_distance_to_data(dataset, samples)
        final["fid"] = fid
        details["fid_classifier"] = classifier
    return ProxyRun(outcome, final, details)


def sample_images(model: nn.Module, diffusion: Diffusion, dataset: ImageDataset,
                  config: DiTConfig) -> Tensor:
    """``fid_samples`` class-balanced DDIM samples in [0, 1] (NaN kept: the caller checks)."""
    generator = torch.Generator().manual_seed(config.sample_seed)  # CPU: the same noise on every device
    device = diffusion.alphas_cumprod.device
    labels = (torch.arange(config.fid_samples) % dataset.num_classes).to(device)
    shape = (dataset.channels, *dataset.image_size)
    chunks = [diffusion.ddim_sample(model, labels[s:s + config.eval_batch_size], shape,
                                    config.sample_steps, generator)
              for s in range(0, len(labels), config.eval_batch_size)]
    return ((torch.cat(chunks) + 1) / 2).clamp(0, 1)


PROXY = Proxy(
    name="dit",
    config_class=DiTConfig,
    run=run,
    load_data=load_dataset,
    metrics=(
        Metric("fid", False, False, "FID (small classifier features)", minimum=0.0),
        Metric("heldout_loss", False, True, "held-out noise MSE", minimum=0.0),
        Metric("train_loss", False, True, "training noise MSE", minimum=0.0),
    ),
    primary_metric="fid",
    halving_metric="heldout_loss",
    smoke={"epochs": 3, "depth": 2, "dim": 32, "warmup_epochs": 0.5, "heldout_repeats": 1,
           "fid_samples": 0},
    description="DiT-style class-conditional diffusion on 8x8 digits; fid in a small classifier's feature space",
    data_help="CIFAR-10 python folder or .npz of images (default: the embedded digits)",
    references=("paper_search_dit_b4.csv", "paper_search_dit_l4.csv"),
)
