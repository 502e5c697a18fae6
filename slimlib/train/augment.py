"""Batched, channel-agnostic augmentations for self-supervised pretraining.

Every op works on a float batch ``(B, C, H, W)`` with any ``C`` (RGB, 13 Sentinel-2 bands,
SAR) and draws its per-sample parameters from an explicit ``torch.Generator``, so two runs
with the same seed see the same views. There is deliberately no hue, saturation,
grayscale or solarisation op: they assume RGB.

Pipeline of :class:`Augment` (one call = one view):

1. random resized crop + horizontal/vertical flips, as one affine ``grid_sample`` per batch;
2. brightness (``x * b``) and contrast (``(x - mean) * c + mean``) jitter, per sample and
   optionally per channel, with probability ``jitter_p``;
3. normalisation ``(x - mean) / std``;
4. gaussian blur (separable, per-sample sigma) with probability ``blur_p``;
5. additive gaussian noise (std ``noise_std`` in standardised units) with probability ``noise_p``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from slimlib.train.configs import AugmentConfig

__all__ = ["Augment", "random_resized_crop", "jitter", "gaussian_blur", "gaussian_noise"]


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator | None, device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=device)


def _bernoulli(n: int, p: float, gen: torch.Generator | None, device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) < p


def random_resized_crop(
    x: torch.Tensor,
    size: int,
    scale: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    hflip: float = 0.5,
    vflip: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Crop a random area share in ``scale`` with aspect in ``ratio``, resize to ``size``.

    Args:
        x: images ``(B, C, H, W)``.
        size: output side length.
        hflip, vflip: flip probabilities (folded into the same affine map).
        generator: RNG on ``x.device`` (``None``: the global RNG).

    Returns:
        ``(B, C, size, size)``, bilinear; sides longer than the image are clipped to it.
    """
    B, dev = x.shape[0], x.device
    area = _uniform(B, scale[0], scale[1], generator, dev)
    log_r = _uniform(B, math.log(ratio[0]), math.log(ratio[1]), generator, dev)
    aspect = torch.exp(log_r)
    w = torch.sqrt(area * aspect).clamp(max=1.0)  # fraction of the image width
    h = torch.sqrt(area / aspect).clamp(max=1.0)
    cx = (1 - w) * (2 * torch.rand(B, generator=generator, device=dev) - 1)  # centre in [-1, 1]
    cy = (1 - h) * (2 * torch.rand(B, generator=generator, device=dev) - 1)
    fx = torch.where(_bernoulli(B, hflip, generator, dev), -1.0, 1.0)
    fy = torch.where(_bernoulli(B, vflip, generator, dev), -1.0, 1.0)
    theta = torch.zeros(B, 2, 3, device=dev, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = w * fx, cx
    theta[:, 1, 1], theta[:, 1, 2] = h * fy, cy
    grid = F.affine_grid(theta, [B, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def jitter(
    x: torch.Tensor,
    brightness: float = 0.4,
    contrast: float = 0.4,
    p: float = 0.8,
    per_channel: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Multiplicative brightness and contrast jitter around each image's own mean.

    Factors are drawn from ``U[1 - a, 1 + a]`` per sample (and per channel when
    ``per_channel``); samples not selected (probability ``1 - p``) keep factor 1.
    """
    B, C, dev = x.shape[0], x.shape[1], x.device
    k = C if per_channel else 1
    apply = _bernoulli(B, p, generator, dev).view(B, 1, 1, 1)
    b = _uniform(B * k, 1 - brightness, 1 + brightness, generator, dev).view(B, k, 1, 1)
    c = _uniform(B * k, 1 - contrast, 1 + contrast, generator, dev).view(B, k, 1, 1)
    b = torch.where(apply, b, torch.ones_like(b))
    c = torch.where(apply, c, torch.ones_like(c))
    x = x * b
    mean = x.mean(dim=(2, 3), keepdim=True) if per_channel else x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * c + mean


def gaussian_blur(
    x: torch.Tensor,
    sigma: tuple[float, float] = (0.1, 2.0),
    p: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Separable gaussian blur with a per-sample sigma from ``U(sigma)`` (probability ``p``).

    The kernel radius is ``ceil(3 * sigma_max)`` clipped to the image; borders reflect.
    """
    B, C, H, W = x.shape
    dev = x.device
    s = _uniform(B, sigma[0], sigma[1], generator, dev)
    apply = _bernoulli(B, p, generator, dev)
    radius = max(1, min(math.ceil(3 * sigma[1]), (min(H, W) - 1) // 2))
    t = torch.arange(-radius, radius + 1, device=dev, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (t.view(1, -1) / s.view(-1, 1).to(x.dtype)) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    identity = (t == 0).to(x.dtype).expand(B, -1)
    kernel = torch.where(apply.view(B, 1), kernel, identity)  # (B, K)
    k = kernel.repeat_interleave(C, dim=0)  # (B*C, K)
    y = x.reshape(1, B * C, H, W)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="reflect"), k.view(B * C, 1, 1, -1),
                 groups=B * C)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), k.view(B * C, 1, -1, 1),
                 groups=B * C)
    return y.view(B, C, H, W)


def gaussian_noise(x: torch.Tensor, std: float = 0.1, p: float = 0.5,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Add ``N(0, std^2)`` noise to a share ``p`` of the samples."""
    B = x.shape[0]
    apply = _bernoulli(B, p, generator, x.device).view(B, 1, 1, 1).to(x.dtype)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + apply * std * noise


class Augment:
    """One random view of a batch, following an :class:`AugmentConfig`.

    Args:
        config: augmentation settings.
        size: output side length (the encoder's ``img_size``).
        mean, std: per-channel normalisation applied after the photometric jitter.

    Call with ``(x, generator)``: ``x`` is ``(B, C, H, W)`` in raw units; returns the
    normalised view ``(B, C, size, size)``.
    """

    def __init__(self, config: AugmentConfig, size: int, mean: torch.Tensor,
                 std: torch.Tensor) -> None:
        self.config = config
        self.size = int(size)
        self.mean = torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        c = self.config
        if x.shape[1] != self.mean.shape[1]:
            raise ValueError(f"images have {x.shape[1]} channels but the normalisation has "
                             f"{self.mean.shape[1]}")
        x = random_resized_crop(x, self.size, c.crop_scale, c.crop_ratio, c.hflip, c.vflip,
                                generator)
        if c.jitter_p > 0 and (c.brightness > 0 or c.contrast > 0):
            x = jitter(x, c.brightness, c.contrast, c.jitter_p, c.per_channel, generator)
        x = (x - self.mean.to(x.device)) / self.std.to(x.device)
        if c.blur_p > 0:
            x = gaussian_blur(x, c.blur_sigma, c.blur_p, generator)
        if c.noise_p > 0 and c.noise_std > 0:
            x = gaussian_noise(x, c.noise_std, c.noise_p, generator)
        return x
