"""Run profiles for the companion book: which models, data, widths and seeds a chapter uses.

Three profiles:

* ``"smoke"``: tests and CI. The embedded models with **random weights** (no pretraining, so
  a smoke build takes minutes; it checks that every chapter runs, its numbers are not
  results), 3 widths, 1 seed, tiny per-class subsets.
* ``"default"``: the book. Galileo-nano (a real RS foundation model, its authors' weights)
  on the embedded EuroSAT 13-band, EuroSAT RGB and UC Merced data when ``SLIMLIB_DATA``
  points at the data root (else the clearly labelled synthetic fallback), with random-init
  and embedding-only controls; slimlib's tiny self-pretrained models for the CV side and the
  learned-slimmable chapter; all 31 widths for the main curves and fewer for the ablations.
* ``"paper"``: the paper's real foundation models on GEO-Bench (needs a GPU and downloads;
  offline the model/data loaders fail with their own messages saying which file is missing).

A chapter's ``parameters`` cell holds ``None`` for every setting and calls
:func:`resolve`, which fills each ``None`` from the profile (``SLIMLIB_PROFILE`` or
``"default"`` when ``profile`` is ``None``) and the profile's :class:`slimlib.settings.Settings`
(data root, cache, results, weights) from the environment (:meth:`Settings.from_env`): a
chapter is an entry point. The chapter helpers pass ``profile.settings`` down explicitly.
Each override is checked against its field's type and range (:func:`_check_setting`, at the
end of this module).
"""

from __future__ import annotations

import dataclasses
import os
import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slimlib._validation import check_widths
from slimlib.constants import (
    CV_DATASETS,
    CV_FALLBACK,
    EMBEDDED_RS_DATASETS,
    LAYER_TYPE_MODELS,
    RS_FALLBACK,
    WIDTHS,
)
from slimlib.settings import PROFILE_ENV, Settings, or_current, profile_name

__all__ = ["Profile", "PROFILES", "PROFILE_ENV", "get", "resolve", "check_parameters",
           "load_datasets", "data_note", "test_limit_note", "results_path", "repo_root",
           "environment", "settings_of"]

#: The paper's 31 width factors (:data:`slimlib.constants.WIDTHS`).
_ALL_WIDTHS: tuple[float, ...] = WIDTHS
_FEW_WIDTHS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2, 0.333, 0.5, 0.75, 1.0)
#: Widths of the default build's controls and ablations (what a 20-minute CPU build affords).
_CONTROL_WIDTHS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)

#: Datasets the smoke and default profiles cross-fit (too small for a useful fixed test split).
_CROSSFIT: tuple[str, ...] = ("eurosat-ms", "ucmerced")

#: The paper's models whose compute the book tabulates (built with ``pretrained=False``).
PAPER_COMPUTE_MODELS: tuple[str, ...] = (
    "ssl4eo-vits16-moco", "dofa-base", "panopticon-vitb14", "copernicusfm-base",
    "mae-vitb16-imagenet", "dinov2-vitb14",
)


@dataclass(frozen=True)
class Profile:
    """Settings of one book build (all tuples so a profile is hashable and printable).

    Attributes:
        name: profile name.
        models: RS encoders for the main post-hoc curves (registry names).
        cv_models: CV (natural-image) encoders for the RS-vs-CV comparison.
        slimmable_pairs: ``(regular, slimmable)`` model pairs for the learned-slimmable chapter.
        datasets: RS datasets; ``None`` means :data:`EMBEDDED_RS_DATASETS` with a data root,
            else :data:`RS_FALLBACK` (synthetic).
        cv_datasets: natural-image datasets (CIFAR-10 when a data root is set).
        widths: width factors of the main curves.
        ablation_widths: width factors of the ablations and the deployment chapter.
        seeds: probe seeds (and slimming seeds for ``order="random"``).
        protocols: probes of the main curves (``"knn"``, ``"linear"``).
        limit_per_class, test_limit_per_class: per-class subset of the train/test splits
            (``None`` = all). ``limit_per_class`` is the probe's training bank.
        crossfit: datasets evaluated by ``folds``-fold cross-fitting over all their images
            instead of their fixed split (:mod:`slimlib.probes`): every image is a test
            image once. Their per-class subset is ``limit_per_class +
            test_limit_per_class`` (all images when either is ``None``).
        folds: number of cross-fitting folds (stratified; fold seed 0).
        batch_size, device: feature extraction settings (``device=None``: CUDA when present).
        compute_models: models whose FLOPs per width are tabulated (``pretrained=False``).
        compute_widths: widths of that table (FLOP counting a ViT-B takes seconds per width).
        layer_type_models: the paper's layer-type ablation models
            (:data:`slimlib.constants.LAYER_TYPE_MODELS`) whose attention-only / FFN-only
            compute floors the parts-floor claims are judged on; empty: those claims are
            judged on no model of theirs and are not testable (the compute models' floors
            are an indication). ViT-L/H FLOP counts on a CPU cost minutes, so only the
            ``paper`` profile tabulates them.
        latency_repeats: timed forward passes per width in the deployment chapter.
        pretrained: load pretrained weights (``False`` in ``smoke``: a random-init pipeline check).
        data_root: an explicit data root (``None``: ``settings.data``, i.e. ``$SLIMLIB_DATA``).
        control_widths: widths at which the random-init controls run (and the pretrained
            model beside them; :func:`slimlib.book.controls_for`).
        init_seeds: init seeds of the random-init controls (one network per seed).
        train_fraction: what a probe seed changes. Below 1, each seed draws its own
            class-stratified subset of this fraction of the probe's training bank (k-NN
            neighbours / linear-probe training set), so ``seeds`` give a real spread; at 1
            both probes are deterministic and extra seeds are copies.
        model_options: per-model options for :func:`slimlib.models.load` (e.g. Galileo's
            ``patch_size``), as ``((name, ((option, value), ...)), ...)``; a dict
            ``{name: {option: value}}`` is accepted by :func:`resolve`. Read them with
            :meth:`options_for`.
        settings: where data, cache, results and weights are (:class:`slimlib.settings.Settings`,
            filled by :func:`resolve`; an explicit ``data_root`` is folded in). ``None`` (the
            bare :data:`PROFILES`): :func:`settings_of` reads them from the environment.
    """

    name: str
    models: tuple[str, ...]
    cv_models: tuple[str, ...]
    slimmable_pairs: tuple[tuple[str, str], ...]
    datasets: tuple[str, ...] | None
    cv_datasets: tuple[str, ...] | None
    widths: tuple[float, ...]
    ablation_widths: tuple[float, ...]
    seeds: tuple[int, ...]
    protocols: tuple[str, ...]
    limit_per_class: int | None
    test_limit_per_class: int | None
    batch_size: int = 256
    device: str | None = None
    compute_models: tuple[str, ...] = PAPER_COMPUTE_MODELS
    layer_type_models: tuple[str, ...] = ()
    compute_widths: tuple[float, ...] = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)
    latency_repeats: int = 5
    pretrained: bool = True
    data_root: str | None = field(default=None)
    control_widths: tuple[float, ...] = _FEW_WIDTHS
    init_seeds: tuple[int, ...] = (0, 1, 2)
    train_fraction: float = 1.0
    model_options: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    crossfit: tuple[str, ...] = ()
    folds: int = 5
    settings: Settings | None = None

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if self.settings is not None:  # paths as text, so the dict is JSON
            out["settings"] = {k: None if v is None else str(v)
                               for k, v in out["settings"].items()}
        return out

    def results_path(self, name: str) -> Path:
        """``results_path(name, self)``: where this profile's table ``name`` lands."""
        return results_path(name, self)

    def options_for(self, name: str) -> dict[str, Any]:
        """The :func:`slimlib.models.load` options this profile gives model ``name``."""
        return dict(dict(self.model_options).get(name, ()))


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        models=("galileo-nano", "rs-moco-tiny"),
        cv_models=("cv-moco-tiny",),
        slimmable_pairs=(("rs-moco-tiny", "rs-moco-tiny-slimmable"),),
        datasets=None, cv_datasets=None,
        widths=(0.1, 0.5, 1.0), ablation_widths=(0.25, 1.0),
        seeds=(0,), protocols=("knn",),
        limit_per_class=12, test_limit_per_class=6, batch_size=128, train_fraction=0.8,
        crossfit=_CROSSFIT,
        compute_models=("ssl4eo-vits16-moco",), compute_widths=(0.1, 1.0),
        latency_repeats=2, pretrained=False, control_widths=(0.1, 1.0), init_seeds=(0, 1),
        model_options=(("galileo-nano", (("patch_size", 8),)),),
    ),
    "default": Profile(
        name="default",
        models=("galileo-nano", "galileo-nano-rgb"),
        cv_models=("cv-moco-tiny", "cv-mae-tiny"),
        slimmable_pairs=(("rs-moco-tiny", "rs-moco-tiny-slimmable"),
                         ("rs-mae-tiny", "rs-mae-tiny-slimmable")),
        datasets=None, cv_datasets=None,
        widths=_ALL_WIDTHS, ablation_widths=_CONTROL_WIDTHS, control_widths=_CONTROL_WIDTHS,
        seeds=(0, 1, 2), protocols=("knn",),
        # EuroSAT RGB: all of the manifest's 160 test images per class and a training bank of
        # 60 per class (docs/book.md, "Test images and build time": what a 20-minute build
        # affords); the two small datasets cross-fitted over all their images (270 and 168)
        limit_per_class=60, test_limit_per_class=160, batch_size=256, train_fraction=0.8,
        crossfit=_CROSSFIT,
        # patch 8: 4x fewer tokens than Galileo's default 4 (320 vs 1,280 on 13-band input),
        # what a 20-minute CPU build affords; docs/models.md compares both patch sizes
        model_options=(("galileo-nano", (("patch_size", 8),)),
                       ("galileo-nano-rgb", (("patch_size", 8),))),
        compute_models=("ssl4eo-vits16-moco", "dofa-base", "mae-vitb16-imagenet"),
        compute_widths=(0.001, 0.01, 0.1, 0.5, 1.0),
    ),
    "paper": Profile(
        name="paper",
        models=("dofa-base", "ssl4eo-vits16-moco", "ssl4eo-vits16-dino", "panopticon-vitb14",
                "copernicusfm-base"),
        cv_models=("mae-vitb16-imagenet", "dinov2-vitb14"),
        slimmable_pairs=(("rs-moco-tiny", "rs-moco-tiny-slimmable"),
                         ("rs-mae-tiny", "rs-mae-tiny-slimmable")),
        datasets=("m-eurosat", "m-brick-kiln", "m-so2sat", "m-bigearthnet"),
        cv_datasets=("imagenet-10",),
        widths=_ALL_WIDTHS, ablation_widths=_FEW_WIDTHS,
        seeds=(0, 1, 2, 3, 4), protocols=("knn", "linear"),
        limit_per_class=None, test_limit_per_class=None, batch_size=64,
        compute_widths=_ALL_WIDTHS, latency_repeats=20, layer_type_models=LAYER_TYPE_MODELS,
    ),
}


def get(name: str | None = None, *, environ: Any = None) -> Profile:
    """The profile ``name`` (default: ``$SLIMLIB_PROFILE`` of ``environ`` or ``"default"``)."""
    name = name if name is not None else profile_name(environ) or "default"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)} "
                         f"(argument or ${PROFILE_ENV})")
    return PROFILES[name]


# EMBEDDED_RS_DATASETS: the embedded real RS datasets a profile uses when its ``datasets`` is
# ``None`` and the data root holds them (each model runs on those it can be fed, see
# ``chapters.runs_on``); RS_FALLBACK, the synthetic fallback, is 13-band, so 13-band and RGB
# models both run on it. Both live in slimlib.constants.

def _default_datasets(root: str | None, synthetic: str, real: Sequence[str]) -> tuple[str, ...]:
    """Real datasets with a data root (which must hold them), synthetic without one
    (:func:`slimlib.data.datasets_for_root`, the rule ``default_dataset`` uses too)."""
    from slimlib.data import datasets_for_root

    return datasets_for_root(root, tuple(real), synthetic)


def check_parameters(parameters: dict[str, Any], *, environ: Any = None) -> Profile:
    """Validate chapter parameters (``profile`` plus :class:`Profile` settings) the way
    :func:`resolve` will inside the chapter, before a kernel starts; other names are
    ignored. Returns the resolved profile.

    Raises:
        ValueError: unknown profile, or a value of the wrong type or range (e.g. a seed
            ``1.7``, ``True`` where a list is expected).
        FileNotFoundError: a given data root that lacks the profile's datasets.
    """
    known = {f.name for f in dataclasses.fields(Profile)}
    profile = parameters.get("profile")
    if profile is not None and not isinstance(profile, str):
        raise _bad("profile", f"one of {sorted(PROFILES)}", profile)
    return resolve(profile, environ=environ,
                   **{k: v for k, v in parameters.items() if k in known})


def _with_root(settings: Settings, data_root: str | None) -> Settings:
    """``settings`` with an explicit data root folded in (made absolute, not yet checked:
    :func:`_default_datasets` says what is wrong with it)."""
    if data_root is None:
        return settings
    return dataclasses.replace(settings, data=Path(data_root).expanduser().resolve())


def resolve(profile: str | Profile | None = None, *, environ: Any = None,
            **overrides: Any) -> Profile:
    """The profile with every override that is not ``None`` applied.

    Overrides are the chapter parameters ``models, datasets, widths, seeds, protocols, device,
    batch_size, data_root`` (and any other :class:`Profile` field, ``settings`` included).
    ``datasets`` and ``cv_datasets`` that are still ``None`` become the embedded real datasets
    when the data root is set, else the synthetic fallback.

    ``profile.settings`` is the ``settings`` override, else the base profile's, else
    :meth:`Settings.from_env` of ``environ`` (default ``os.environ``): resolving a chapter's
    profile is an entry point. An explicit ``data_root`` replaces ``settings.data``.
    """
    base = profile if isinstance(profile, Profile) else get(profile, environ=environ)
    known = {f.name for f in dataclasses.fields(Profile)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown profile setting(s) {unknown}; allowed: {sorted(known)}")
    changes = {key: _check_setting(key, value) for key, value in overrides.items()
               if value is not None}
    out = dataclasses.replace(base, **changes)
    settings = out.settings if out.settings is not None else Settings.from_env(environ)
    out = dataclasses.replace(out, settings=_with_root(settings, out.data_root))
    root = out.settings.data
    if out.datasets is None:
        out = dataclasses.replace(
            out, datasets=_default_datasets(root, RS_FALLBACK, EMBEDDED_RS_DATASETS))
    if out.cv_datasets is None:
        out = dataclasses.replace(
            out, cv_datasets=_default_datasets(root, CV_FALLBACK, CV_DATASETS))
    return out


def settings_of(profile: Profile | None) -> Settings:
    """The settings a profile's runs use: ``profile.settings`` (set by :func:`resolve`), or
    :func:`slimlib.settings.current` for a bare profile (:func:`get`), with the profile's
    explicit ``data_root`` folded in."""
    settings = or_current(getattr(profile, "settings", None))
    return _with_root(settings, getattr(profile, "data_root", None))


def load_datasets(profile: Profile, names: Sequence[str] | None = None,
                  ) -> dict[str, tuple[Any, Any]]:
    """``{display name: (train, test)}`` of :class:`~slimlib.specs.ImageDataset` per dataset.

    Uses the profile's per-class subsets; synthetic data keep ``(synthetic)`` in the key so no
    table or figure can mistake them for real data. A dataset in ``profile.crossfit`` comes as
    a :class:`slimlib.probes.CrossFitted` pair: its fixed split (for code that needs one)
    carrying ``.crossfit``, every image (at most ``limit_per_class + test_limit_per_class``
    per class) evaluated by ``profile.folds``-fold cross-fitting, which
    :func:`slimlib.sweep` uses instead.

    Raises:
        ValueError: a cross-fitted dataset without an ``"all"`` split.
    """
    from slimlib import data
    from slimlib.probes import CrossFit, CrossFitted

    settings = settings_of(profile)
    names = profile.datasets if names is None else tuple(names)
    limits = (profile.limit_per_class, profile.test_limit_per_class)
    out: dict[str, tuple[Any, Any]] = {}

    def load(name: str, split: str, limit: int | None) -> Any:
        kind = data.info(name)["kind"]
        key = {"synthetic": "n_per_class", "embedded": "limit_per_class"}.get(kind)
        kwargs = {} if limit is None or key is None else {key: limit}
        return data.load(name, split, root=profile.data_root, settings=settings, **kwargs)

    for name in names:
        train, test = (load(name, split, limit) for split, limit in zip(("train", "test"),
                                                                         limits, strict=True))
        pair: tuple[Any, Any] = (train, test)
        if name in getattr(profile, "crossfit", ()):
            if "all" not in data.info(name)["splits"]:
                raise ValueError(f"profile {profile.name!r} cross-fits {name!r}, which has no "
                                 "'all' split; remove it from crossfit=")
            every = load(name, "all", None if None in limits else sum(limits))
            pair = CrossFitted(train, test, CrossFit(every, folds=profile.folds))
        out[test.display_name] = pair
    return out


def test_limit_note(profile: Profile) -> str:
    """How many images per class the profile's RS datasets use, in words."""
    train, test = profile.limit_per_class, profile.test_limit_per_class
    text = (f"{'all' if train is None else f'at most {train}'} train / "
            f"{'all' if test is None else f'at most {test}'} test images per class")
    crossfit = [n for n in (profile.datasets or ()) if n in profile.crossfit]
    if crossfit:
        text += (f"; {', '.join(crossfit)} cross-fitted ({profile.folds} folds: every image is "
                 "a test image once)")
    return text


def repo_root(start: str | os.PathLike | None = None) -> Path:
    """The nearest folder above ``start`` (default: cwd) holding ``pyproject.toml``, else cwd."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "slimlib").is_dir():
            return folder
    return here


def results_path(name: str, profile: Profile | str | None = None, *,
                 settings: Settings | None = None) -> Path:
    """Where a chapter's table lands: ``<settings.results>/<profile>/<name>`` (one folder per
    profile, so smoke runs never mix with the book's numbers). ``settings`` defaults to the
    profile's (:func:`settings_of`); ``settings.results`` is ``$SLIMLIB_RESULTS`` or
    ``<repository>/results`` (:mod:`slimlib.settings`)."""
    if isinstance(profile, Profile):
        prof = profile.name
        base = (settings if settings is not None else settings_of(profile)).results
    else:
        prof = profile or get().name
        base = or_current(settings).results
    path = Path(base) / prof / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def environment(profile: Profile) -> dict[str, str]:
    """What this build ran on (for the introduction's "this build" table)."""
    import torch

    from slimlib import __version__

    root = settings_of(profile).data
    return {
        "profile": profile.name,
        "slimlib": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, "
                   + (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"),
        "data root": str(root) if root is not None else "not set (synthetic fallback)",
        "RS models": ", ".join(profile.models),
        "model options": "; ".join(f"{m}: {dict(o)}" for m, o in profile.model_options)
                         or "none",
        "CV models": ", ".join(profile.cv_models),
        "RS datasets": ", ".join(profile.datasets or ()),
        "CV datasets": ", ".join(profile.cv_datasets or ()),
        "widths": f"{len(profile.widths)} ({min(profile.widths)} ... {max(profile.widths)})",
        "seeds": ", ".join(map(str, profile.seeds)),
        "protocols": ", ".join(profile.protocols),
        "weights": "pretrained" if profile.pretrained else "RANDOM (pipeline check only)",
        "subset per class": test_limit_note(profile),
    }


def data_note(profile: Profile) -> str:
    """A Markdown sentence saying which data this page used; synthetic data are flagged."""
    names = tuple(profile.datasets or ()) + tuple(profile.cv_datasets or ())
    synthetic = sorted({n for n in names if n.startswith("synthetic")})
    real = sorted({n for n in names if not n.startswith("synthetic")})
    parts = []
    if synthetic:
        parts.append(f"**This page uses SYNTHETIC data ({', '.join(synthetic)})**: no data root "
                     "was set (`SLIMLIB_DATA`), so the numbers below illustrate the method and "
                     "are not real-data results.")
    if real:
        parts.append(f"Data: embedded real images ({', '.join(real)}), "
                     f"{test_limit_note(profile)}.")
    if not profile.pretrained:
        parts.append("**The encoders have RANDOM weights** (profile "
                     f"`{profile.name}` checks that the pipeline runs; not a result).")
    parts.append(f"Profile `{profile.name}`: {len(profile.widths)} widths, seeds "
                 f"{list(profile.seeds)}, models {list(profile.models)}.")
    if profile.model_options:
        parts.append("Model options: " + "; ".join(
            f"`{m}` {', '.join(f'{k}={v}' for k, v in o)}" for m, o in profile.model_options)
            + ".")
    if profile.train_fraction < 1:
        parts.append(f"Each probe seed uses its own class-stratified {profile.train_fraction:.0%} "
                     "of the training bank, so seed bands are real spreads.")
    return " ".join(parts)


# ------------------------------------------------------- checking one profile override


def _tuple(value: Any, name: str) -> tuple:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a list (or a single name), got {type(value).__name__}")
    return tuple(value)


def _options(value: Any) -> tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]:
    items = value.items() if isinstance(value, dict) else value
    out = []
    for name, opts in items:
        opts = opts.items() if isinstance(opts, dict) else opts
        out.append((str(name), tuple((str(k), v) for k, v in opts)))
    return tuple(out)


def _bad(key: str, wanted: str, value: Any) -> ValueError:
    return ValueError(f"profile setting {key} must be {wanted}; got {value!r} "
                      f"({type(value).__name__})")


def _names(key: str, value: Any) -> tuple[str, ...]:
    names = _tuple(value, key)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise _bad(key, "a name or a non-empty list of names (strings)", value)
    return names


def _integer(key: str, value: Any, low: int) -> int:
    """``value`` as an int >= ``low``; bools and non-integral numbers (1.7) are refused
    (integer text such as ``"8"`` is accepted)."""
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        value = int(value)
    integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not integral or int(value) < low:
        raise _bad(key, f"an integer >= {low}", value)
    return int(value)


def _check_setting(key: str, value: Any) -> Any:
    """One override validated against the :class:`Profile` field's type and range."""
    if key in ("models", "cv_models", "datasets", "cv_datasets"):
        return _names(key, value)
    if key == "protocols":
        names = _names(key, value)
        bad = [n for n in names if n not in ("knn", "linear")]
        if bad:
            raise _bad(key, "'knn' and/or 'linear'", value)
        return names
    if key in ("widths", "ablation_widths", "compute_widths", "control_widths"):
        return tuple(check_widths(_tuple(value, key), key))
    if key == "model_options":
        if not isinstance(value, dict | tuple | list):
            raise _bad(key, "a mapping {model: {option: value}}", value)
        return _options(value)
    if key == "train_fraction":
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not 0.0 < float(value) <= 1.0:
            raise _bad(key, "a number in (0, 1]", value)
        return float(value)
    if key in ("seeds", "init_seeds"):
        seeds = tuple(_integer(key, s, 0) for s in _tuple(value, key))
        if not seeds or len(set(seeds)) != len(seeds):
            raise _bad(key, "a non-empty list of distinct integers >= 0", value)
        return seeds
    if key == "slimmable_pairs":
        pairs = tuple(tuple(p) for p in _tuple(value, key))
        if not all(len(p) == 2 and all(isinstance(n, str) for n in p) for p in pairs):
            raise _bad(key, "a list of [regular, slimmable] name pairs", value)
        return pairs
    if key == "crossfit":
        names = _tuple(value, key)
        if not all(isinstance(n, str) and n for n in names):
            raise _bad(key, "a list of dataset names (possibly empty)", value)
        return names
    if key == "folds":
        return _integer(key, value, 2)
    if key in ("batch_size", "latency_repeats") or key.endswith("limit_per_class"):
        return _integer(key, value, 1)
    if key in ("name", "device", "data_root"):
        if not isinstance(value, str | os.PathLike) or isinstance(value, bool) or not str(value):
            raise _bad(key, "a string" + (" (a folder path)" if key == "data_root" else ""),
                       value)
        if key == "device":
            import torch

            try:
                torch.device(str(value))
            except (RuntimeError, ValueError):
                raise _bad(key, "a torch device such as 'cpu' or 'cuda'", value) from None
        return str(value)
    if key == "pretrained":
        if not isinstance(value, bool):
            raise _bad(key, "true or false", value)
        return value
    if key == "settings":
        if not isinstance(value, Settings):
            raise _bad(key, "a slimlib.settings.Settings", value)
        return value
    return value
