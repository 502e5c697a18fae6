"""Resolve the inputs of :func:`slimlib.diagnose`: a model and a dataset from strings.

* model: a registry name (:func:`slimlib.models.list_models`), a timm model name, or
  ``"package.module:function"`` returning an ``nn.Module``; plus optional weights.
* data: a registry name (:func:`slimlib.data.list_datasets`) or a folder in the
  ``ImageFolder`` layout (``root/train/<class>/*`` and ``root/test/<class>/*``, or
  ``root/<class>/*`` split here), with an optional band list.

Every unusable input raises ``ValueError`` / ``TypeError`` / ``FileNotFoundError`` with a
message that says what to pass instead.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from slimlib._imageio import IMAGE_SUFFIXES, TIFF_SUFFIXES
from slimlib.data import load_image_folder
from slimlib.models.bands import IMAGENET_MEAN, IMAGENET_STD
from slimlib.models.encoder import Encoder, ModuleEncoder, TimmViTEncoder
from slimlib.specs import ImageDataset, ModelSpec
from slimlib.sweeping.controls import random_init

__all__ = ["ResolvedModel", "resolve_model", "resolve_data", "check_data",
           "IMAGE_SUFFIXES", "TIFF_SUFFIXES", "REGISTRY_PREFIX"]



@dataclass
class ResolvedModel:
    """A model ready for :func:`slimlib.sweep`: an :class:`Encoder` with a ``.spec``.

    Attributes:
        encoder: ``(B, C, H, W) -> (B, D)`` with ``encoder.spec``.
        kind: ``"registry"``, ``"timm"``, ``"function"`` or ``"module"``.
        weights: human-readable description of the weights (``"random init"`` when random).
        random_weights: whether the model's own weights are random.
    """

    encoder: Encoder
    kind: str
    weights: str
    random_weights: bool


# ============================================================================ models


def _load_state(module: nn.Module, path: str | os.PathLike) -> None:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds no state dict (got {type(state).__name__})")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"weights file {path} does not fit the model: {err}") from err


def _existing(path: str | os.PathLike) -> Path:
    if not Path(path).is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    return Path(path)


def _timm_weights_offline(name: str) -> dict[str, Any]:
    """``{}`` when timm can fetch ``name``'s pretrained weights; the cached file when this
    machine is offline (a fast probe, or ``HF_HUB_OFFLINE``/``SLIMLIB_OFFLINE``) but the
    Hugging Face cache holds it; otherwise a ``ValueError`` at once saying which file to place
    where (timm itself retries for about a minute before failing)."""
    import timm

    from slimlib.models.download import is_online

    cfg = timm.models.get_pretrained_cfg(name)
    repo = getattr(cfg, "hf_hub_id", None)
    url = "https://huggingface.co" if repo else getattr(cfg, "url", None)
    if not url or is_online(url):
        return {}
    if repo:
        from huggingface_hub import try_to_load_from_cache

        for filename in ("model.safetensors", "pytorch_model.bin"):
            hit = try_to_load_from_cache(repo, filename)
            if isinstance(hit, str):
                return {"pretrained_cfg_overlay": {"file": hit}}
    source = f"https://huggingface.co/{repo} (model.safetensors)" if repo else url
    raise ValueError(f"weights='pretrained' for timm model {name!r}: this machine is offline "
                     f"({url} does not answer) and the weights are not in the Hugging Face "
                     f"cache. Download {source} where there is internet and pass the file as "
                     "weights= (CLI --checkpoint /path/to/model.safetensors), or use "
                     "weights='random'")


def _timm_names() -> set[str]:
    import timm

    return set(timm.list_models())


def _spec_for(module: nn.Module, name: str, *, bands: tuple[str, ...], units: str,
              mean: tuple[float, ...], std: tuple[float, ...], input_size: int | None
              ) -> ModelSpec:
    patch = getattr(getattr(module, "patch_embed", None), "patch_size", (16, 16))
    patch = int(patch[0] if isinstance(patch, tuple | list) else patch)
    size = getattr(getattr(module, "patch_embed", None), "img_size", None)
    size = int(size[0] if isinstance(size, tuple | list) else size) if size is not None else None
    size = input_size or size or 224
    dim = int(getattr(module, "num_features", getattr(module, "embed_dim", 0)) or 0)
    feature = "cls" if getattr(module, "cls_token", None) is not None else "mean"
    return ModelSpec(name=name, family="cv", architecture=type(module).__name__, bands=bands,
                     mean=mean, std=std, units=units, input_size=size, patch_size=patch,
                     embed_dim=dim, feature=feature, source="slimlib.diagnose")


def _wrap(module: nn.Module, spec: ModelSpec) -> Encoder:
    """An :class:`Encoder` over ``module``: timm-style ViTs pool their tokens, others must
    already return ``(B, D)`` (checked on a dummy batch)."""
    if isinstance(module, Encoder):
        return module
    is_vit = hasattr(module, "forward_features") and hasattr(module, "num_prefix_tokens")
    enc: Encoder = TimmViTEncoder(module, spec, dynamic_img_size=True) if is_vit \
        else ModuleEncoder(module, spec, dynamic_img_size=True)
    try:
        with torch.no_grad():
            out = enc.eval()(torch.zeros(2, spec.in_chans, spec.input_size, spec.input_size))
    except RuntimeError as err:
        raise ValueError(f"model {spec.name!r} fails on an input (2, {spec.in_chans}, "
                         f"{spec.input_size}, {spec.input_size}) of the data's {spec.in_chans} "
                         f"bands {spec.bands}: {err}. Pass bands= matching the model's input "
                         "channels (or image_size= its input size)") from err
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"model {spec.name!r} must return pooled features (B, D) for an input "
                         f"(B, {spec.in_chans}, {spec.input_size}, {spec.input_size}); got "
                         f"{shape}. Return features from your function (e.g. a timm "
                         "VisionTransformer with num_classes=0).")
    return enc if spec.embed_dim == out.shape[1] else _wrap_with_dim(enc, int(out.shape[1]))


def _wrap_with_dim(enc: Encoder, dim: int) -> Encoder:
    enc.spec = dataclasses.replace(enc.spec, embed_dim=dim)
    return enc


def _call_function(target: str) -> nn.Module:
    module_name, _, func_name = target.partition(":")
    if not module_name or not func_name:
        raise ValueError(f"model {target!r}: write module:function, e.g. mypkg.models:build")
    try:
        mod = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"model {target!r}: cannot import module {module_name!r} ({err}); is it "
                         "on PYTHONPATH?") from err
    func = getattr(mod, func_name, None)
    if not callable(func):
        raise ValueError(f"model {target!r}: module {module_name!r} has no callable "
                         f"{func_name!r}")
    built = func()
    if not isinstance(built, nn.Module):
        raise TypeError(f"model {target!r}: {func_name}() must return an nn.Module; got "
                        f"{type(built).__name__}")
    return built


def resolve_model(model: str | nn.Module, *, weights: str | os.PathLike | None = None,
                  bands: tuple[str, ...], units: str, mean: tuple[float, ...] | None,
                  std: tuple[float, ...] | None, input_size: int | None,
                  seed: int = 0, settings: Any = None) -> ResolvedModel:
    """Build the model to diagnose.

    Args:
        model: registry name, timm name, ``"module:function"`` or an ``nn.Module``.
        weights: ``None`` (registry: published weights; timm: random init, since timm's
            pretrained weights need a download; function/module: as built), ``"random"``,
            ``"pretrained"`` or a weights file (safetensors or a torch state dict).
        bands, units: input channels and units of the data (used when the model has no spec).
        mean, std: per-band normalisation for models without a spec (``None``: ImageNet's for
            RGB ``rgb01`` data).
        input_size: input side in pixels (``None``: the model's own).
        seed: torch seed for random initialisation.
    """
    if weights is not None and not isinstance(weights, str | os.PathLike):
        raise ValueError(f"weights must be None, 'random', 'pretrained' or a file; got {weights!r}")
    wfile = weights if weights not in (None, "random", "pretrained") else None
    if mean is None or std is None:
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    name = model if isinstance(model, str) else type(model).__name__
    torch.manual_seed(seed)
    if isinstance(model, nn.Module):
        module, kind = model, "module"
        label = "as passed"
    elif not isinstance(model, str) or not model:
        raise TypeError(f"model must be a registry name, a timm name, 'module:function' or an "
                        f"nn.Module; got {type(model).__name__}")
    elif ":" in model:
        module, kind, label = _call_function(model), "function", "as built by the function"
    else:
        from slimlib import models as _models

        if model in _models.list_models():
            if weights == "random":
                enc = _models.load(model, pretrained=False, settings=settings)
                return ResolvedModel(enc, "registry", "random init", True)
            enc = _models.load(model, pretrained=True, checkpoint=wfile, settings=settings)
            return ResolvedModel(enc, "registry", str(wfile or "published weights"), False)
        if model not in _timm_names():
            raise ValueError(f"unknown model {model!r}: not in slimlib's registry "
                             f"({', '.join(_models.list_models()[:6])}, …) and not a timm model "
                             "name; or pass module:function returning an nn.Module")
        import timm

        pretrained = weights == "pretrained"
        extra: dict[str, Any] = {}
        if wfile is not None:  # timm's own loader: drops the classifier, adapts in_chans
            extra = {"pretrained_cfg_overlay": {"file": str(_existing(wfile))}}
        elif pretrained:
            extra = _timm_weights_offline(model)
        try:
            module = timm.create_model(model, pretrained=pretrained or wfile is not None,
                                       num_classes=0, in_chans=len(bands),
                                       dynamic_img_size=True, **extra,
                                       **({"img_size": input_size} if input_size else {}))
        except Exception as err:  # noqa: BLE001 - timm raises many kinds (network, hub, args)
            raise ValueError(f"timm could not build {model!r} (weights {weights}): "
                             f"{str(err).strip().splitlines()[0] if str(err).strip() else err}."
                             " Offline, use weights='random' or a local weights file.") from err
        kind, label = "timm", "timm pretrained" if pretrained else "random init"
        if wfile is not None:
            label, wfile = f"weights file {wfile}", None
        cfg = getattr(module, "pretrained_cfg", {}) or {}
        if tuple(bands) == ("R", "G", "B") and units == "rgb01" and "mean" in cfg:
            mean, std = tuple(cfg["mean"]), tuple(cfg["std"])
    if wfile is not None:
        _load_state(module, wfile)
        label = f"weights file {wfile}"
    elif weights == "random" and kind in ("function", "module"):
        module = random_init(module, seed=seed)
        label = "random init"
    spec = getattr(module, "spec", None)
    if not isinstance(spec, ModelSpec):
        if len(mean) != len(bands):
            raise ValueError(f"model {name!r}: {len(bands)} bands {bands} but {len(mean)} "
                             "normalisation means; pass mean/std per band")
        spec = _spec_for(module, name, bands=tuple(bands), units=units, mean=tuple(mean),
                         std=tuple(std), input_size=input_size)
    enc = _wrap(module.eval(), spec)
    return ResolvedModel(enc, kind, label, label == "random init")


# ============================================================================ data


def _select_bands(ds: ImageDataset, bands: tuple[str, ...]) -> ImageDataset:
    missing = [b for b in bands if b not in ds.bands]
    if missing:
        raise ValueError(f"{ds.name} has no band(s) {missing}; its bands are {ds.bands}")
    idx = [ds.bands.index(b) for b in bands]
    return dataclasses.replace(ds, images=ds.images[:, idx], bands=tuple(bands),
                               notes=list(ds.notes))


def _load_registry(name: str, split: str, limit: int | None, seed: int,
                   data_root: str | os.PathLike | None, settings: Any = None) -> ImageDataset:
    """One split of a registry dataset, at most ``limit`` images per class (stratified, seeded);
    loaders that cannot subset themselves are subset after loading."""
    from slimlib import data as _data

    if limit is None:
        return _data.load(name, split, root=data_root, settings=settings)
    try:
        return _data.load(name, split, root=data_root, limit_per_class=limit, seed=seed,
                          settings=settings)
    except ValueError as err:
        if "unknown option" not in str(err):
            raise
    return subset_per_class(_data.load(name, split, root=data_root, settings=settings), limit,
                            seed)


def subset_per_class(ds: ImageDataset, limit: int | None, seed: int) -> ImageDataset:
    """At most ``limit`` images of every class of ``ds`` (stratified, seeded, original order
    kept); ``ds`` itself when nothing would be dropped, ``limit`` is ``None`` or the data are
    multi-label."""
    from slimlib.data import stratified_subset

    if limit is None or ds.multilabel:
        return ds
    idx = torch.from_numpy(stratified_subset(ds.labels.numpy(), limit, seed))
    if len(idx) == len(ds):
        return ds
    return dataclasses.replace(ds, images=ds.images[idx], labels=ds.labels[idx],
                               paths=tuple(ds.paths[i] for i in idx.tolist()) if ds.paths
                               else None, notes=list(ds.notes))


#: Prefix that picks the registry dataset when a local folder has the same name.
REGISTRY_PREFIX = "registry:"


def resolve_data(data: str | os.PathLike | tuple, *, bands: tuple[str, ...] | None = None,
                 limit_per_class: int | None = None, test_fraction: float = 0.25, seed: int = 0,
                 data_root: str | os.PathLike | None = None, progress: bool = True,
                 scale: str | None = None, settings: Any = None
                 ) -> tuple[str, ImageDataset, ImageDataset]:
    """``(name, train, test)`` from a registry name, an ImageFolder folder or a pair.

    A bare name that is both a registry dataset and a folder in the working directory is an
    error: write ``./name`` for the folder or ``registry:name`` for the registry dataset.
    ``scale`` says how folder images that are not 8-bit become model units
    (:data:`slimlib._imageio.SCALES`).
    """
    if isinstance(data, tuple | list) and len(data) == 2 and \
            all(isinstance(d, ImageDataset) for d in data):
        train, test = data
        name = train.name
    elif isinstance(data, str | os.PathLike):
        from slimlib import data as _data

        registry = _data.list_datasets()
        text = os.fspath(data)
        explicit = isinstance(data, str) and text.startswith(REGISTRY_PREFIX)
        if explicit:
            text = text[len(REGISTRY_PREFIX):]
            if text not in registry:
                raise ValueError(f"unknown registry dataset {text!r}; the registry holds "
                                 f"{', '.join(registry)}")
        if isinstance(data, str) and text in registry:
            if not explicit and Path(text).exists():
                raise ValueError(f"{text!r} is both a registry dataset and the local folder "
                                 f"{Path(text).resolve()}; write ./{text} for the folder or "
                                 f"{REGISTRY_PREFIX}{text} for the registry dataset")
            if scale is not None:
                raise ValueError(f"scale= applies to image folders; registry dataset {text!r} "
                                 "has its own documented units")
            train, test = (_load_registry(text, split, limit_per_class, seed, data_root,
                                          settings)
                           for split in ("train", "test"))
            name = text
        else:
            path = Path(data)
            if not path.exists() and isinstance(data, str) and os.sep not in data:
                raise ValueError(f"unknown dataset {data!r}: not a registry name "
                                 f"({', '.join(registry)}) and no such folder")
            train, test = load_image_folder(path, bands, limit_per_class, test_fraction, seed,
                                       progress, scale)
            return path.name or str(path), train, test
    else:
        raise TypeError(f"data must be a registry name, a folder or a (train, test) pair of "
                        f"ImageDataset; got {type(data).__name__}")
    if bands is not None:
        train, test = _select_bands(train, bands), _select_bands(test, bands)
    return name, train, test


def check_data(train: ImageDataset, test: ImageDataset, *, folds: int, k: int) -> None:
    """Refuse data too small for ``folds``-fold CV with a k-NN of ``k`` neighbours."""
    if train.multilabel:
        raise ValueError(f"{train.name}: diagnose supports single-label data (the CV picks "
                         "stratified folds); multi-label data are not supported yet")
    counts = torch.bincount(train.labels, minlength=len(train.classes)).tolist()
    too_few = {c: n for c, n in zip(train.classes, counts, strict=True) if n < folds}
    if too_few:
        raise ValueError(f"{train.name}: too few training images per class for {folds}-fold "
                         f"cross-validation (need >= {folds}): {too_few}. Add images, lower "
                         "folds= or raise limit_per_class=")
    if len(test) == 0 or len(set(test.labels.tolist())) < 2:
        raise ValueError(f"{test.name}: the test split needs images of at least two classes")
    if len(train) * (folds - 1) // folds < k:
        raise ValueError(f"{train.name}: {len(train)} training images are too few for a "
                         f"{k}-NN in {folds}-fold CV")


def describe_input(value: Any) -> str:
    return str(value) if isinstance(value, str | os.PathLike) else type(value).__name__
