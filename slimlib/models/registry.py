"""The model registry: names -> :class:`ModelSpec` + a loader returning an :class:`Encoder`.

Entries (:class:`~slimlib.models.entry.ModelEntry`) are declared in
:mod:`slimlib.models.torchgeo_models`, :mod:`~.timm_models`, :mod:`~.galileo_models`,
:mod:`~.terratorch_models` and bridged from :mod:`slimlib.train.embedded` (:mod:`~.embedded`). Declaring them imports neither timm nor torchgeo: heavy imports happen
inside the loaders, so :func:`list_models` and :func:`spec` are instant.
"""

from __future__ import annotations

import difflib
import os

from slimlib._validation import check_choice
from slimlib.models import embedded as _embedded_models
from slimlib.models.download import Checkpoint, weights_root
from slimlib.models.encoder import Encoder
from slimlib.models.entry import _REGISTRY, FAMILIES, ModelEntry, register
from slimlib.settings import Settings, or_current
from slimlib.specs import ModelSpec

__all__ = ["FAMILIES", "ModelEntry", "register", "list_models", "spec", "load", "checkpoint_info"]

_EMBEDDED_OPTIONS = ("train_if_missing", "init_seed", "data_root")
_POPULATED = False


def _populate() -> None:
    global _POPULATED
    if _POPULATED:
        return
    _POPULATED = True
    from slimlib.models import galileo_models, terratorch_models, timm_models, torchgeo_models

    for module in (torchgeo_models, galileo_models, terratorch_models, timm_models):
        for entry in module.ENTRIES:
            register(entry, overwrite=True)


def list_models(family: str | None = None) -> list[str]:
    """Registered model names, optionally only one ``family`` (``"rs"``, ``"cv"``, ``"embedded"``).

    Listing imports no model code (the embedded names are :data:`slimlib.constants.EMBEDDED_MODEL_NAMES`).
    """
    if family is not None:
        check_choice(family, FAMILIES, "family")
    _populate()
    names = [n for n, e in _REGISTRY.items() if family in (None, e.spec.family)]
    if family in (None, "embedded"):
        names += [n for n in _embedded_models.names() if n not in names]
    return names


def _unknown(name: object) -> ValueError:
    available = list_models()
    close = difflib.get_close_matches(str(name), available, n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    return ValueError(f"Unknown model {name!r}.{hint} Available models: {', '.join(available)}")


def _entry(name: str) -> ModelEntry | None:
    """The static entry of ``name``, ``None`` for embedded names; ``ValueError`` if unknown."""
    _populate()
    if isinstance(name, str) and name in _REGISTRY:
        return _REGISTRY[name]
    if isinstance(name, str) and name in _embedded_models.names():
        return None
    raise _unknown(name)


def spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a registered model (no weights are touched).

    Raises:
        ValueError: unknown name (the message lists the available names).
    """
    entry = _entry(name)
    return entry.spec if entry is not None else _embedded_models.spec(name)


def checkpoint_info(name: str) -> Checkpoint | None:
    """Where the pretrained weights of ``name`` come from (URL and local file name)."""
    entry = _entry(name)
    return entry.checkpoint if entry is not None else None


def load(name: str, *, pretrained: bool = True, checkpoint: str | os.PathLike | None = None,
         weights: str | os.PathLike | None = None, settings: Settings | None = None,
         **kwargs) -> Encoder:
    """Build a registered encoder.

    Args:
        name: registry name (see :func:`list_models`).
        pretrained: load the published weights (looked up locally first, downloaded only when
            the host is reachable, otherwise a fast :class:`WeightsUnavailableError`).
            ``False`` builds the exact architecture with random weights from torch's RNG.
        checkpoint: a local checkpoint file to load instead of the published one.
        weights: a weights root searched first for the published file, as
            ``<weights>/<file name>`` (e.g. ``<weights>/galileo-nano/encoder.pt``); default
            ``settings.weights`` (``$SLIMLIB_WEIGHTS``). Then the cache, then a download
            (see :mod:`slimlib.models.download`); files with a published sha256 are verified.
        settings: weights root, cache (``<cache>/weights``, the embedded models'
            checkpoints) and data root (the embedded models' pretraining data); ``None``:
            :func:`slimlib.settings.current`.
        **kwargs: per-model options, e.g. ``bands=`` (DOFA, Copernicus-FM, Panopticon),
            ``res=`` (Scale-MAE), ``backend=`` (TerraTorch models), ``train_if_missing=``, ``data_root=``
            (embedded models).

    Returns:
        An :class:`Encoder`: ``forward(x (B, C, H, W)) -> (B, spec.embed_dim)``, in eval mode.

    Raises:
        ValueError: unknown name, unknown option, ``checkpoint`` with ``pretrained=False``.
        ImportError: an optional dependency (TerraTorch) is missing.
        WeightsUnavailableError: pretrained weights are neither on disk nor downloadable.
        ChecksumMismatchError: a found or downloaded file is not the published one.
    """
    if not isinstance(pretrained, bool):
        raise ValueError(f"pretrained must be True or False; got {pretrained!r}")
    if checkpoint is not None and not pretrained:
        raise ValueError("checkpoint= loads weights; it cannot be combined with pretrained=False")
    entry = _entry(name)
    options = entry.options if entry is not None else _EMBEDDED_OPTIONS
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        allowed = ", ".join(options) if options else "none"
        raise ValueError(f"{name}: unknown option(s) {unknown}; allowed options: {allowed}")
    settings = or_current(settings)
    if weights is None:
        weights = settings.weights
    # every loader's download.resolve() searches the weights root first, then <cache>/weights
    with weights_root(weights, cache=settings.cache):
        if entry is None:
            encoder = _embedded_models.load(name, pretrained=pretrained, checkpoint=checkpoint,
                                            settings=settings, **kwargs)
        else:
            encoder = entry.loader(entry.spec, pretrained=pretrained, checkpoint=checkpoint,
                                   **kwargs)
    # the registered options shape the model (patch size, bands, ...): slimlib.export records
    # them so that load_slimmed rebuilds the same architecture
    encoder.load_options = dict(kwargs) if entry is not None else {}
    return encoder.eval()
