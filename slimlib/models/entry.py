"""The registry's leaf: :class:`ModelEntry` and :func:`register` (imports no family module).

Family modules (:mod:`~.torchgeo_models`, :mod:`~.timm_models`, :mod:`~.galileo_models`,
:mod:`~.terratorch_models`) build their ``ENTRIES`` from :class:`ModelEntry`;
:mod:`slimlib.models.registry` imports those modules and registers them. Nothing here imports
back, so the family modules and the registry never import each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from slimlib._validation import check_choice
from slimlib.models.download import Checkpoint
from slimlib.models.encoder import Encoder
from slimlib.specs import ModelSpec

__all__ = ["FAMILIES", "PRETRAINERS", "AUTHORS", "SLIMLIB", "NOBODY", "Loader", "ModelEntry",
           "register", "registered"]

#: Registry families: remote-sensing FMs, computer-vision baselines, slimlib's own tiny models.
FAMILIES = ("rs", "cv", "embedded")

#: Who pretrained a model's weights: the authors who published them, slimlib's miniature
#: recipe (the embedded tiny models), or nobody (random weights). The rules of evidence
#: (:mod:`slimlib.book.claims.rules`) give verdicts only for models of the kind a claim is about.
AUTHORS, SLIMLIB, NOBODY = "its authors", "slimlib's miniature recipe", "nobody (random weights)"
PRETRAINERS = (AUTHORS, SLIMLIB, NOBODY)

#: ``loader(spec, *, pretrained, checkpoint, **options) -> Encoder``
Loader = Callable[..., Encoder]


@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    Attributes:
        spec: its :class:`ModelSpec`.
        loader: ``loader(spec, *, pretrained, checkpoint, **options) -> Encoder``.
        checkpoint: where the pretrained weights come from (``None``: the loader knows).
        options: extra keyword arguments :func:`slimlib.models.load` accepts for this entry.
        pretrained_by: who pretrained the published weights (one of :data:`PRETRAINERS`;
            every registered RS and CV entry loads the weights its authors published).
    """

    spec: ModelSpec
    loader: Loader
    checkpoint: Checkpoint | None = None
    options: tuple[str, ...] = ()
    pretrained_by: str = AUTHORS

    @property
    def name(self) -> str:
        return self.spec.name


_REGISTRY: dict[str, ModelEntry] = {}


def register(entry: ModelEntry, *, overwrite: bool = False) -> ModelEntry:
    """Add ``entry`` to the registry (``ValueError`` on a duplicate name unless ``overwrite``)."""
    check_choice(entry.spec.family, FAMILIES, "family")
    check_choice(entry.pretrained_by, PRETRAINERS, "pretrained_by")
    if entry.name in _REGISTRY and not overwrite:
        raise ValueError(f"a model named {entry.name!r} is already registered")
    _REGISTRY[entry.name] = entry
    return entry


def registered() -> dict[str, ModelEntry]:
    """The registered entries by name (the live mapping; the registry populates it)."""
    return _REGISTRY
