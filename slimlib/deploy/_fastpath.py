"""An exact fast path for (slimmed) ViT inference: :func:`optimize`.

``slimlib.slim`` leaves a model whose matrix products are small and oddly shaped (at s = 0.1 on
ViT-S/16: 108 qkv outputs, 6-dim heads, 153 FFN units). In eager PyTorch such a model pays for
shapes the CPU kernels handle badly and for memory passes that do no arithmetic. ``optimize``
rewrites every pre-norm transformer block into a :class:`FastBlock` that computes the same
function (to float rounding) with fewer passes and friendlier shapes:

* **one fused QKV product** with contiguous, pre-transposed weights; the softmax scale is
  folded into the Q rows (SDPA then runs with scale 1), and the output width is padded with
  zero columns to a multiple of ``pad`` (16): oneDNN/MKL run N = 112 faster than N = 108;
* **head-dim padding**: heads of 2 … ``pad_heads_below - 1`` dims are zero-padded to ``pad``
  dims before SDPA (zero Q/K dims add nothing to the scores, zero V dims give zero output dims
  that are dropped); the CPU flash kernel is faster at 16 dims than at 6;
* **residual add fused into the product**: ``torch.addmm(x, o, W)`` writes ``x + o W`` in one
  kernel instead of a bias broadcast, a product and a separate add;
* **biases folded into the products**: the output-projection bias rides on a column of ones
  appended to the attention output, and the FFN output bias on one extra hidden unit whose
  pre-activation is exactly 1 (zero weights, bias 1; its ``fc2`` row is ``b2 / act(1)``),
  placed in the padding of the hidden width where there is room;
* **LayerScale** (timm ``ls1``/``ls2``) folded into the projection and ``fc2`` weights;
* the second residual add runs in place (``y.addmm_``) on the block's own fresh output.

Nothing is approximated: the tests (``tests/deploy/test_fast.py``) check the outputs against the
model passed in to 1e-5 at several widths down to one dim per head, for timm ViTs and
Galileo-nano. Blocks ``optimize`` does not recognise raise ``TypeError`` (``strict=True``) or
are left as they are (``strict=False``). The result is for inference: it computes under
``torch.no_grad()``, and one model should not be called from several threads at once (blocks
share scratch buffers). ``torch.onnx.export`` / ``torch.compile`` trace it like any module
(the scratch buffers are then replaced by ordinary tensor ops).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from slimlib._validation import check_int
from slimlib.slimming import SlimAttention, attention_layout, find_blocks

__all__ = ["FastBlock", "optimize"]

#: Activations applied element-wise by the FFNs ``optimize`` accepts (``act(0) == 0``).
_ACTS = (nn.GELU, nn.ReLU, nn.SiLU)


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


class _Scratch:
    """Reusable scratch tensors shared by the blocks of one optimised model (eager only)."""

    def __init__(self) -> None:
        self._store: dict[tuple, torch.Tensor] = {}

    def get(self, key: str, shape: tuple[int, ...], like: torch.Tensor, fill: float) -> torch.Tensor:
        """A tensor of ``shape`` whose untouched entries hold ``fill``; callers overwrite the
        rest. The fill is only written when the tensor is created."""
        full = (key, shape, like.dtype, like.device)
        tensor = self._store.get(full)
        if tensor is None:
            if len(self._store) > 32:  # many input shapes: do not grow without bound
                self._store.clear()
            tensor = torch.full(shape, fill, dtype=like.dtype, device=like.device)
            self._store[full] = tensor
        return tensor


def _tracing() -> bool:
    return bool(torch.compiler.is_compiling() or torch.jit.is_tracing()
                or torch.jit.is_scripting())


def _attention_parts(attn: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor,
                                               torch.Tensor | None, int, int, float]:
    """(W_qkv, b_qkv, W_proj, b_proj, heads, head_dim, softmax scale) of a supported attention."""
    layout = attention_layout(attn)  # raises TypeError for unknown attention
    name = type(attn).__name__
    for sub in ("q_norm", "k_norm", "norm"):
        if not isinstance(getattr(attn, sub, nn.Identity()), nn.Identity):
            raise TypeError(f"{name}.{sub} is {type(getattr(attn, sub)).__name__}; the fast path "
                            "supports attention without q/k norms or a post-attention norm")
    if getattr(attn, "gate", None) is not None:
        raise TypeError(f"{name} has an output gate; the fast path does not support it")
    layers = [getattr(attn, n) for n in layout.qkv]
    weight = torch.cat([layer.weight.detach() for layer in layers])
    biases = [layer.bias for layer in layers]
    bias = None if all(b is None for b in biases) else torch.cat([
        (b.detach() if b is not None else layer.weight.new_zeros(layer.out_features))
        for b, layer in zip(biases, layers, strict=True)])
    out = getattr(attn, layout.out)
    heads, head_dim = layout.num_heads, layout.head_dim
    if isinstance(attn, SlimAttention):
        scale = attn.scale
    elif layout.kind == "fused" and getattr(attn, "fused_attn", True):
        scale = head_dim ** -0.5  # timm's fused path leaves SDPA at its default scale
    else:
        own = getattr(attn, "scale", None)
        scale = float(own) if isinstance(own, int | float) and not isinstance(own, bool) \
            else head_dim ** -0.5
    bias_out = out.bias.detach() if out.bias is not None else None
    return weight, bias, out.weight.detach(), bias_out, heads, head_dim, float(scale)


def _layer_scale(module: nn.Module, block: str, name: str) -> torch.Tensor | None:
    if isinstance(module, nn.Identity):
        return None
    gamma = getattr(module, "gamma", None)
    if type(module).__name__ == "LayerScale" and isinstance(gamma, torch.Tensor):
        return gamma.detach()
    raise TypeError(f"block {block!r}: {name} is {type(module).__name__}; the fast path "
                    "supports Identity or timm LayerScale there")


class FastBlock(nn.Module):
    """A pre-norm block ``x + ls1(attn(norm1(x)))``, then ``x + ls2(mlp(norm2(x)))``, rewritten.

    Built by :func:`optimize` from a timm ``Block`` / Galileo block (or any module with
    ``norm1``, ``attn``, ``norm2``, ``mlp`` and optional ``ls1``/``ls2`` of that form). Its
    ``forward(x, attn_mask=None)`` takes ``x`` (B, N, D) and a boolean or additive SDPA mask.
    """

    def __init__(self, block: nn.Module, name: str, scratch: _Scratch, *, pad: int = 16,
                 pad_heads_below: int = 12) -> None:
        super().__init__()
        for sub in ("norm1", "norm2"):
            if not isinstance(getattr(block, sub, None), nn.LayerNorm):
                raise TypeError(f"block {name!r}: {sub} is not an nn.LayerNorm")
        for sub in ("drop_path1", "drop_path2"):
            if not isinstance(getattr(block, sub, nn.Identity()), nn.Identity):
                raise TypeError(f"block {name!r}: {sub} is not Identity (stochastic depth); "
                                "build the model for inference (drop_path_rate=0)")
        mlp = block.mlp
        if type(mlp).__name__ != "Mlp" or not all(hasattr(mlp, n) for n in ("fc1", "act", "fc2")):
            raise TypeError(f"block {name!r}: FFN {type(mlp).__name__} is not timm's Mlp")
        if not isinstance(mlp.act, _ACTS) or not isinstance(getattr(mlp, "norm", nn.Identity()),
                                                             nn.Identity):
            raise TypeError(f"block {name!r}: the fast path supports an Mlp with a GELU/ReLU/SiLU "
                            "activation and no hidden norm")
        self._scratch = scratch
        self.norm1 = copy.deepcopy(block.norm1)
        self.norm2 = copy.deepcopy(block.norm2)
        self.act = copy.deepcopy(mlp.act)
        wqkv, bqkv, wproj, bproj, heads, head_dim, scale = _attention_parts(block.attn)
        gamma1 = _layer_scale(getattr(block, "ls1", nn.Identity()), name, "ls1")
        gamma2 = _layer_scale(getattr(block, "ls2", nn.Identity()), name, "ls2")
        dim = int(wproj.shape[0])
        attn_dim = heads * head_dim
        self.heads, self.head_dim, self.dim, self.attn_dim = heads, head_dim, dim, attn_dim
        self.scale = scale
        self.head_pad = pad if 1 < head_dim < pad_heads_below and head_dim % pad else head_dim

        # QKV: scale folded into Q, output padded with zero columns, stored as (D, 3*H*d + pad)
        wqkv, bqkv = wqkv.clone(), (bqkv.clone() if bqkv is not None
                                    else wqkv.new_zeros(wqkv.shape[0]))
        wqkv[:attn_dim] *= scale
        bqkv[:attn_dim] *= scale
        width = _round_up(3 * attn_dim, pad)
        qkv_t = wqkv.new_zeros(dim, width)
        qkv_t[:, :3 * attn_dim] = wqkv.t()
        qkv_b = wqkv.new_zeros(width)
        qkv_b[:3 * attn_dim] = bqkv
        self.register_buffer("qkv_t", qkv_t)
        self.register_buffer("qkv_b", qkv_b)

        # output projection, LayerScale folded, bias as the last row (times a ones column)
        proj_b = bproj if bproj is not None else wproj.new_zeros(dim)
        proj_t = torch.cat([wproj.t(), proj_b[None]])  # (attn_dim + 1, D)
        if gamma1 is not None:
            proj_t = proj_t * gamma1
        self.register_buffer("proj_t", proj_t.contiguous())

        # FFN: hidden width padded; fc2's bias on one unit with pre-activation exactly 1
        w1 = mlp.fc1.weight.detach()
        b1 = mlp.fc1.bias.detach() if mlp.fc1.bias is not None else w1.new_zeros(w1.shape[0])
        w2 = mlp.fc2.weight.detach()
        b2 = mlp.fc2.bias.detach() if mlp.fc2.bias is not None else w2.new_zeros(dim)
        hidden = int(w1.shape[0])
        one = float(self.act(torch.ones(1, dtype=w1.dtype))[0])
        self.bias_unit = _round_up(hidden, pad) > hidden and one != 0.0
        padded = _round_up(hidden + int(self.bias_unit), pad)
        fc1_t = w1.new_zeros(dim, padded)
        fc1_t[:, :hidden] = w1.t()
        fc1_b = w1.new_zeros(padded)
        fc1_b[:hidden] = b1
        fc2_t = w2.new_zeros(padded, dim)
        fc2_t[:hidden] = w2.t()
        if self.bias_unit:
            fc1_b[hidden] = 1.0
            fc2_t[hidden] = b2 / one
        if gamma2 is not None:
            fc2_t = fc2_t * gamma2
            b2 = b2 * gamma2
        self.register_buffer("fc1_t", fc1_t)
        self.register_buffer("fc1_b", fc1_b)
        self.register_buffer("fc2_t", fc2_t)
        self.register_buffer("fc2_b", None if self.bias_unit else b2.clone())
        self.hidden = hidden

    def _attention(self, qkv: torch.Tensor, B: int, N: int, attn_mask: torch.Tensor | None,
                   is_causal: bool) -> torch.Tensor:
        H, d, p = self.heads, self.head_dim, self.head_pad
        q, k, v = qkv[:, :3 * self.attn_dim].view(B, N, 3, H, d).permute(2, 0, 3, 1, 4).unbind(0)
        if p != d:
            if _tracing():
                q, k, v = (F.pad(t, (0, p - d)) for t in (q, k, v))
            else:
                padded = []
                for key, t in zip("qkv", (q, k, v), strict=True):
                    buf = self._scratch.get(f"head_{key}", (B, H, N, p), t, 0.0)
                    buf[..., :d].copy_(t)
                    padded.append(buf)
                q, k, v = padded
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal,
                                             scale=1.0)
        return out[..., :d] if p != d else out  # (B, H, N, d)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None,
                is_causal: bool = False) -> torch.Tensor:
        B, N, D = x.shape
        x2 = x.reshape(B * N, D)
        h = F.layer_norm(x2, (D,), self.norm1.weight, self.norm1.bias, self.norm1.eps)
        qkv = torch.addmm(self.qkv_b, h, self.qkv_t)
        o = self._attention(qkv, B, N, attn_mask, is_causal).transpose(1, 2)  # (B, N, H, d)
        if _tracing():
            ones = o.new_ones(B * N, 1)
            o = torch.cat([o.reshape(B * N, self.attn_dim), ones], dim=1)
        else:
            buf = self._scratch.get("attn_out", (B * N, self.attn_dim + 1), o, 1.0)
            buf[:, :self.attn_dim].view(B, N, self.heads, self.head_dim).copy_(o)
            o = buf
        y = torch.addmm(x2, o, self.proj_t)  # x + attn(x) (bias and LayerScale included)
        h = F.layer_norm(y, (D,), self.norm2.weight, self.norm2.bias, self.norm2.eps)
        a = self.act(torch.addmm(self.fc1_b, h, self.fc1_t))
        if _tracing():
            y = torch.addmm(y, a, self.fc2_t)
        else:
            y.addmm_(a, self.fc2_t)
        if self.fc2_b is not None:
            y = y + self.fc2_b if _tracing() else y.add_(self.fc2_b)
        return y.view(B, N, D)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, heads={self.heads}, head_dim={self.head_dim} (SDPA at "
                f"{self.head_pad}), hidden={self.hidden} (padded to {self.fc1_t.shape[1]}), "
                f"qkv width {self.qkv_t.shape[1]}, scale={self.scale:.5g}")


def optimize(model: nn.Module, *, pad: int = 16, pad_heads_below: int = 12,
             strict: bool = True) -> nn.Module:
    """An inference copy of ``model`` whose transformer blocks are :class:`FastBlock`\\ s.

    Args:
        model: a ViT encoder (e.g. ``slimlib.slim(...)``'s result, or the full model); it is
            not modified. Blocks are found as in :func:`slimlib.slimming.find_blocks`.
        pad: widths (qkv outputs, FFN hidden units, small head dims) are padded with zeros to
            a multiple of this (16 suits AVX-512 kernels; 1 turns padding off).
        pad_heads_below: head dims ``2 <= d_k' < pad_heads_below`` are padded to ``pad``
            before SDPA (measured faster on CPU; ``docs/deploy.md``); 0 turns it off.
        strict: raise ``TypeError`` for a block the fast path does not support (default);
            ``False`` leaves such blocks unchanged.

    Returns:
        A copy in eval mode with the same output as ``model`` to float rounding.

    Raises:
        TypeError: no transformer blocks, or (``strict``) an unsupported block, named.
        ValueError: ``pad`` or ``pad_heads_below`` not a non-negative int (``pad`` >= 1).
    """
    for value, label, low in ((pad, "pad", 1), (pad_heads_below, "pad_heads_below", 0)):
        check_int(value, label, low=low)
    if model.training:
        raise ValueError("optimize() is for inference: call model.eval() first (dropout and "
                         "stochastic depth would otherwise differ)")
    blocks = find_blocks(model)
    new = copy.deepcopy(model).eval()
    scratch = _Scratch()
    for (name, _), (_, block) in zip(blocks, find_blocks(new), strict=True):
        try:
            fast = FastBlock(block, name, scratch, pad=pad, pad_heads_below=pad_heads_below)
        except TypeError as err:
            if strict:
                raise TypeError(f"slimlib.deploy._fastpath.optimize: {err} (pass strict=False to "
                                "leave unsupported blocks unchanged)") from err
            continue
        parent, _, attr = name.rpartition(".")
        owner = new.get_submodule(parent) if parent else new
        if isinstance(owner, nn.Sequential | nn.ModuleList) and attr.isdigit():
            owner[int(attr)] = fast
        else:
            setattr(owner, attr, fast)
    return new
