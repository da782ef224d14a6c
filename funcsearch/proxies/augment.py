"""Image augmentation for the image proxies, drawn from the trial's generator so that a seed
gives the same batches on every run and a continued run the same as an uninterrupted one.

``augment`` translates and flips; ``mix_batch`` and ``random_erase`` are DeiT's mixup / cutmix
and random erasing (timm's ``Mixup`` in batch mode and ``RandomErasing`` in pixel mode), the
regularization the Derf paper trains ViT-B with (PAPER_METHODS.md section 4).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def augment(images: Tensor, shift: int, flip: bool, generator: torch.Generator) -> Tensor:
    """Random translation by up to ``shift`` pixels (zero fill) and optional horizontal flip."""
    if shift:
        batch, _, height, width = images.shape
        padded = F.pad(images, (shift, shift, shift, shift))
        offsets = torch.randint(0, 2 * shift + 1, (batch, 2), generator=generator,
                                device=generator.device).tolist()
        images = torch.stack([padded[i, :, dy:dy + height, dx:dx + width]
                              for i, (dy, dx) in enumerate(offsets)])
    if flip:
        flips = torch.rand(images.shape[0], generator=generator, device=generator.device) < 0.5
        images = torch.where(flips[:, None, None, None], images.flip(-1), images)
    return images


MIX_SWITCH_PROB = 0.5
"""With both mixup and cutmix on, the chance that a batch uses cutmix (timm's default, as DeiT)."""
ERASE_AREA = (0.02, 1 / 3)
ERASE_LOG_ASPECT = (math.log(0.3), math.log(1 / 0.3))
"""Random erasing's box: a fraction of the image's area and a log aspect ratio (timm's defaults)."""


def _uniform(generator: torch.Generator, low: float = 0.0, high: float = 1.0) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator, device=generator.device))


def _beta(a: float, generator: torch.Generator) -> float:
    """One Beta(a, a) draw from the trial's generator (torch's Beta sampler takes no generator)."""
    seed = int(torch.randint(0, 2**62, (), generator=generator, device=generator.device))
    return float(np.random.default_rng(seed).beta(a, a))


def mix_batch(images: Tensor, labels: Tensor, num_classes: int, mixup: float, cutmix: float,
              generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Mixup or cutmix of a batch with its reverse, as timm's ``Mixup`` in batch mode (DeiT's
    recipe): returns the mixed images and the mixed one-hot targets (label smoothing is applied
    by the loss, which is the same as smoothing before mixing)."""
    targets = F.one_hot(labels, num_classes).float()
    use_cutmix = cutmix > 0 and (mixup <= 0 or _uniform(generator) < MIX_SWITCH_PROB)
    lam = _beta(cutmix if use_cutmix else mixup, generator)
    flipped = images.flip(0)
    if use_cutmix:
        height, width = images.shape[-2:]
        cut = math.sqrt(1 - lam)
        cut_h, cut_w = int(height * cut), int(width * cut)
        cy, cx = int(_uniform(generator, 0, height)), int(_uniform(generator, 0, width))
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
        images = images.clone()
        images[..., y0:y1, x0:x1] = flipped[..., y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (height * width)  # the area actually pasted
    else:
        images = lam * images + (1 - lam) * flipped
    return images, lam * targets + (1 - lam) * targets.flip(0)


def random_erase(images: Tensor, chance: float, generator: torch.Generator) -> Tensor:
    """Replace a random box of each image, with probability ``chance``, by standard normal noise
    (timm's ``RandomErasing``, mode "pixel", applied to standardised images as there)."""
    if chance <= 0:
        return images
    images = images.clone()
    _, channels, height, width = images.shape
    for index in range(images.shape[0]):
        if _uniform(generator) >= chance:
            continue
        for _ in range(10):  # timm's attempts at a box that fits
            area = _uniform(generator, *ERASE_AREA) * height * width
            aspect = math.exp(_uniform(generator, *ERASE_LOG_ASPECT))
            box_h, box_w = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
            if 0 < box_h < height and 0 < box_w < width:
                top = int(_uniform(generator, 0, height - box_h + 1))
                left = int(_uniform(generator, 0, width - box_w + 1))
                images[index, :, top:top + box_h, left:left + box_w] = torch.randn(
                    (channels, box_h, box_w), generator=generator, device=generator.device)
                break
    return images
