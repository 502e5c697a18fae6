"""MoCo v3 for timm ViTs (Chen, Xie & He, ICCV 2021), with slimmable in-place distillation.

Online branch: encoder -> 3-layer projector (BN, last BN without affine) -> 2-layer
predictor. Momentum branch: EMA copies of encoder and projector, updated after every
optimiser step with a coefficient that rises from ``momentum`` to 1 on a half cosine.
Loss: symmetric InfoNCE, ``ctr(q1, k2) + ctr(q2, k1)`` with
``ctr(q, k) = 2 tau * CE(q k^T / tau, diag)`` over the batch (MoCo v3 without a queue).

Slimmable training (the paper leaves the MoCo distillation target open; our choice):
a sub-width s is trained with the *soft* version of the same contrastive task. The full
width's detached similarity distribution over the batch keys,
``p = softmax(q_full k^T / tau)``, replaces the one-hot positive:
``2 tau * CE(q_s k^T / tau, p)`` for both view pairs. This is the US-Nets in-place
distillation (sub-nets fit the full net's soft predictions) with MoCo's "classes" being the
batch keys: the momentum keys stay full width, so every width is pulled into the same
embedding space, and as the full width becomes confident the target tends to the plain
MoCo loss. ``distill="none"`` uses the plain loss at every width instead. Unless
``slimmable.train_heads``, projector and predictor learn from the full width only (the
loop freezes their parameters during the sub-width passes; gradients flow through them).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from slimlib.train.augment import Augment
from slimlib.train.configs import MoCoConfig
from slimlib.train.encoder import TinyViTEncoder

__all__ = ["MoCoV3", "contrastive_loss", "momentum_at"]


def _head(num_layers: int, in_dim: int, hidden: int, out_dim: int, last_bn: bool) -> nn.Sequential:
    """MoCo v3 MLP head: (Linear-BN-ReLU) x (L-1), Linear, optional affine-free BN."""
    layers: list[nn.Module] = []
    dim = in_dim
    for _ in range(num_layers - 1):
        layers += [nn.Linear(dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
        dim = hidden
    layers.append(nn.Linear(dim, out_dim, bias=False))
    if last_bn:
        layers.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*layers)


def contrastive_loss(q: torch.Tensor, k: torch.Tensor, temperature: float,
                     target: torch.Tensor | None = None) -> torch.Tensor:
    """``2 tau * CE(norm(q) norm(k)^T / tau, target)``; ``q``, ``k``: ``(B, d)``.

    ``target=None`` uses the diagonal (sample i's positive is key i); a ``(B, B)``
    probability matrix gives the soft-target (distillation) form.
    """
    logits = F.normalize(q, dim=1) @ F.normalize(k, dim=1).T / temperature
    if target is None:
        target = torch.arange(q.shape[0], device=q.device)
    return F.cross_entropy(logits.float(), target) * (2 * temperature)


def momentum_at(base: float, progress: float) -> float:
    """EMA coefficient at training ``progress`` in [0, 1]: ``1 - (1 - m0)(cos(pi t) + 1)/2``."""
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


class MoCoV3(nn.Module):
    """MoCo v3 around a :class:`TinyViTEncoder` (whose ``feature`` should be ``"cls"``).

    ``make_inputs`` draws two augmented views; ``full_loss`` returns the full-width loss and
    the detached targets; ``sub_loss`` trains a narrower width against them (run it inside
    :func:`slimlib.train.slimmable.width` on :attr:`encoder`).
    """

    def __init__(self, encoder: TinyViTEncoder, config: MoCoConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder
        dim = encoder.embed_dim
        self.projector = _head(3, dim, config.mlp_dim, config.dim, last_bn=True)
        self.predictor = _head(2, config.dim, config.mlp_dim, config.dim, last_bn=False)
        if config.freeze_patch_embed:
            encoder.vit.patch_embed.requires_grad_(False)
        self.momentum_encoder = copy.deepcopy(encoder)
        self.momentum_projector = copy.deepcopy(self.projector)
        for p in (*self.momentum_encoder.parameters(), *self.momentum_projector.parameters()):
            p.requires_grad_(False)
        self.momentum = config.momentum

    def make_inputs(self, x: torch.Tensor, augment: Augment,
                    generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independent views of the raw batch ``x``."""
        return augment(x, generator), augment(x, generator)

    def query(self, x: torch.Tensor) -> torch.Tensor:
        """Online prediction ``(B, dim)``."""
        return self.predictor(self.projector(self.encoder(x)))

    @torch.no_grad()
    def key(self, x: torch.Tensor) -> torch.Tensor:
        """Momentum projection ``(B, dim)`` (always full width)."""
        return self.momentum_projector(self.momentum_encoder(x))

    def full_loss(self, inputs: tuple[torch.Tensor, torch.Tensor]):
        """Symmetric MoCo v3 loss at the current (widest) width.

        Returns:
            ``(loss, targets)``; ``targets`` holds the momentum keys and the detached soft
            similarity targets for :meth:`sub_loss`.
        """
        x1, x2 = inputs
        q1, q2 = self.query(x1), self.query(x2)
        k1, k2 = self.key(x1), self.key(x2)
        t = self.config.temperature
        loss = contrastive_loss(q1, k2, t) + contrastive_loss(q2, k1, t)
        with torch.no_grad():
            p12 = (F.normalize(q1, dim=1) @ F.normalize(k2, dim=1).T / t).float().softmax(dim=1)
            p21 = (F.normalize(q2, dim=1) @ F.normalize(k1, dim=1).T / t).float().softmax(dim=1)
        return loss, {"k1": k1, "k2": k2, "p12": p12, "p21": p21}

    def sub_loss(self, inputs: tuple[torch.Tensor, torch.Tensor], targets: dict,
                 distill: str = "inplace") -> torch.Tensor:
        """Loss of a narrower width (soft targets for ``"inplace"``, one-hot for ``"none"``)."""
        x1, x2 = inputs
        q1, q2 = self.query(x1), self.query(x2)
        t = self.config.temperature
        soft = distill == "inplace"
        return (contrastive_loss(q1, targets["k2"], t, targets["p12"] if soft else None)
                + contrastive_loss(q2, targets["k1"], t, targets["p21"] if soft else None))

    @torch.no_grad()
    def after_step(self, progress: float) -> dict[str, float]:
        """EMA update of the momentum branch; ``progress`` = finished share of training."""
        m = momentum_at(self.config.momentum, progress)
        self.momentum = m
        for online, target in ((self.encoder, self.momentum_encoder),
                               (self.projector, self.momentum_projector)):
            for p_o, p_t in zip(online.parameters(), target.parameters(), strict=True):
                p_t.mul_(m).add_(p_o.detach(), alpha=1 - m)
            for b_o, b_t in zip(online.buffers(), target.buffers(), strict=True):
                b_t.copy_(b_o)
        return {"momentum": m}
