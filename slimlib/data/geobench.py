"""Finding, downloading and loading GEO-Bench classification tasks.

:func:`load_geobench` loads one split of a task (``<base>/classification_v1.0/<task>/``,
found by :func:`find_task_dir` under ``root=``, ``$GEO_BENCH_DIR``, ``$SLIMLIB_DATA/geobench``
or the cache; fetched from Hugging Face by :func:`download_task` on request) into an
:class:`~slimlib.specs.ImageDataset`. The on-disk format (HDF5 samples, the restricted
unpickler, partition files, task specs) is read by :mod:`.geobench_format`, whose readers are
re-exported here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..settings import DATA_ENV, GEO_BENCH_ENV, Settings, or_current
from ..specs import ImageDataset
from ._common import (
    SkipLog,
    check_limit,
    check_memory,
    even_subset,
    parallel_map,
    require_online,
    stratified_subset,
)
from .bands import EUROSAT_MS_BANDS, S2_BANDS, is_rgb, is_s2
from .geobench_format import (
    _stack_bands,
    partition_samples,
    read_label,
    read_sample,
    read_task_specs,
)

ENV = GEO_BENCH_ENV
HF_REPO = "recursix/geo-bench-1.0"
BENCHMARK_DIRS = ("classification_v1.0", "classification_v0.9.1", "classification_v0.9.0")
SPLITS = ("train", "valid", "test")
SPLIT_ALIASES = {"val": "valid", "validation": "valid"}
_DOWNLOAD_HOW = (
    f"Get the data with slimlib.data.load(name, download=True) on a machine with internet "
    f"(Hugging Face dataset {HF_REPO}, files classification_v1.0/<task>.zip), or with "
    f"GEO-Bench's own 'geobench-download' CLI, then point root= or ${ENV} at the folder holding "
    f"classification_v1.0/."
)


# --------------------------------------------------------------------------- locating


def _cache_base(settings: Settings) -> Path:
    return Path(settings.cache) / "geobench"


def candidate_bases(root: str | os.PathLike | None, settings: Settings | None = None
                    ) -> list[tuple[str, Path]]:
    """Folders searched for GEO-Bench, as ``(setting, path)`` in priority order: ``root``
    when given, else ``settings.geobench`` (``$GEO_BENCH_DIR``), ``<settings.data>/geobench``
    and ``<settings.cache>/geobench``."""
    if root is not None:
        return [("root=", Path(root).expanduser())]
    settings = or_current(settings)
    bases = []
    if settings.geobench is not None:
        bases.append((f"${ENV}", Path(settings.geobench)))
    if settings.data is not None:
        bases.append((f"${DATA_ENV}/geobench", Path(settings.data) / "geobench"))
    bases.append(("cache", _cache_base(settings)))
    return bases


def _is_task_dir(path: Path) -> bool:
    return path.is_dir() and any(path.glob("*_partition.json"))


def find_task_dir(name: str, root: str | os.PathLike | None,
                  settings: Settings | None = None) -> Path | None:
    for _, base in candidate_bases(root, settings):
        for cand in [base / sub / name for sub in BENCHMARK_DIRS] + [base / name, base]:
            if _is_task_dir(cand) and cand.name == name:
                return cand
    return None


def _missing_error(name: str, root: str | os.PathLike | None,
                   settings: Settings | None = None) -> FileNotFoundError:
    tried = "; ".join(f"{setting} → {path}" for setting, path in candidate_bases(root, settings))
    return FileNotFoundError(
        f"GEO-Bench task {name!r} not found (looked for <base>/classification_v1.0/{name}/ with "
        f"*_partition.json under: {tried}). {_DOWNLOAD_HOW}")


def download_task(name: str, root: str | os.PathLike | None = None, *,
                  settings: Settings | None = None) -> Path:
    """Download and unpack one GEO-Bench v1.0 classification task from Hugging Face.

    Fails within seconds with ``ConnectionError`` when offline. Files go to ``root``, else
    ``$GEO_BENCH_DIR``, else ``$SLIMLIB_CACHE/geobench``; returns the task folder.
    """
    if root is None:
        settings = or_current(settings)
    base = Path(root if root is not None else settings.geobench or _cache_base(settings)
                ).expanduser()
    require_online("huggingface.co", f"GEO-Bench {name!r}",
                   f"Copy classification_v1.0/{name}.zip from {HF_REPO} by other means and unzip "
                   f"it under {base / 'classification_v1.0'}.")
    return fetch_task(name, base / BENCHMARK_DIRS[0], partition_glob="default_partition.json")


def fetch_task(name: str, bench: Path, *, partition_glob: str) -> Path:
    """Download the ``<bench.name>/<name>*.zip`` files of GEO-Bench from Hugging Face, unpack
    them in a temporary folder under ``bench`` and move the one task folder (the folder holding
    the file matching ``partition_glob``) to ``bench/name`` (replacing an older copy).
    Shared by the classification and the segmentation loaders; returns ``bench/name``."""
    from huggingface_hub import HfApi, hf_hub_download

    prefix = f"{bench.name}/{name}"
    files = [f for f in HfApi().list_repo_files(HF_REPO, repo_type="dataset")
             if f.startswith(prefix) and f.endswith(".zip")]
    if not files:
        raise FileNotFoundError(f"{HF_REPO} has no {prefix}*.zip")
    bench.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=bench) as tmp:
        for f in files:
            local = hf_hub_download(HF_REPO, filename=f, repo_type="dataset", local_dir=tmp)
            with zipfile.ZipFile(local) as zf:
                zf.extractall(Path(tmp) / "unpacked")
        found = sorted({p.parent for p in (Path(tmp) / "unpacked").rglob(partition_glob)})
        if len(found) != 1:
            raise ValueError(f"unexpected layout of {files}: {len(found)} task folders")
        target = bench / name
        if target.exists():
            shutil.rmtree(target)
        os.replace(found[0], target)
    return target


# --------------------------------------------------------------------------- loading


def _check_s2_scale(images: torch.Tensor, names: list[str]) -> float:
    """Divisor that brings the S2 channels to reflectance: 10 000 for DN, 1 if already so."""
    idx = [i for i, n in enumerate(names) if is_s2(n)]
    if not idx:
        return 1.0
    sample = images[: min(64, len(images))][:, idx]
    return 1e4 if float(sample.median()) > 20 else 1.0


def _band_order_check(images: torch.Tensor, bands: tuple[str, ...]) -> str | None:
    """Cirrus (B10) is by far the darkest band of clear-sky L1C scenes; check that it is."""
    if "B10" not in bands:
        return None
    medians = images[: min(256, len(images))].transpose(0, 1).flatten(1).median(dim=1).values
    darkest = bands[int(medians.argmin())]
    if darkest != "B10":
        return (f"band-order check failed: the darkest band is {darkest}, not B10 (cirrus); the "
                f"band labels may be wrong (per-band medians {medians.tolist()})")
    return None


def load_geobench(name: str, split: str, root: str | os.PathLike | None = None, *,
                  partition: str = "default", limit: int | None = None,
                  limit_per_class: int | None = None, seed: int = 0, download: bool = False,
                  fix_band_order: bool = True, band_names: tuple[str, ...] | None = None,
                  registry_classes: tuple[str, ...] | Callable[[], tuple[str, ...]] = (),
                  max_gib: float | None = 32.0, settings: Settings | None = None
                  ) -> ImageDataset:
    """Load one split of a GEO-Bench classification task into memory.

    Args:
        name: task folder name, e.g. ``"m-eurosat"``.
        split: ``"train"``, ``"valid"`` or ``"test"`` of ``partition``.
        root: GEO-Bench folder (holding ``classification_v1.0/``); default ``$GEO_BENCH_DIR``,
            then ``$SLIMLIB_DATA/geobench``, then the slimlib cache.
        partition: partition file prefix (``"default"``, ``"0.10x_train"``, …).
        limit: keep at most this many samples, evenly spaced (any task).
        limit_per_class: stratified deterministic subset (single-label tasks only).
        download: fetch the task from Hugging Face when it is missing.
        fix_band_order: relabel m-eurosat's bands to the EuroSAT file order (see docs).
        band_names: override the channel names read from the files.
        max_gib: refuse to allocate more float32 image memory than this.
        settings: where ``root=None`` looks (:class:`slimlib.settings.Settings`; ``None``:
            :func:`slimlib.settings.current`).
    """
    limit_per_class = check_limit(limit_per_class)
    if root is None:
        settings = or_current(settings)
    task_dir = find_task_dir(name, root, settings)
    if task_dir is None:
        if not download:
            raise _missing_error(name, root, settings)
        task_dir = download_task(name, root, settings=settings)
    sample_names = partition_samples(task_dir, name, partition, split)
    specs = read_task_specs(task_dir)

    log = SkipLog(name)

    def read(sample: str) -> tuple[np.ndarray, list[str], bool, Any] | str:
        try:
            bands, label = read_sample(task_dir / f"{sample}.hdf5")
            return (*_stack_bands(bands), label)
        except FileNotFoundError:
            return "file is missing"
        except Exception as err:  # noqa: BLE001
            return f"unreadable ({type(err).__name__}: {err})"

    if limit_per_class is not None:
        # labels are needed first: read all labels (cheap relative to the pixels kept later)
        labels_only = [read_label(task_dir / f"{s}.hdf5") for s in sample_names]
        if any(isinstance(lab, np.ndarray) and lab.ndim == 1 and lab.size > 1
               for lab in labels_only if lab is not None):
            raise ValueError(f"{name} is multi-label: use limit= instead of limit_per_class=")
        valid = [i for i, lab in enumerate(labels_only) if lab is not None]
        keep = stratified_subset([int(labels_only[i]) for i in valid], limit_per_class, seed)
        # unreadable samples stay in the list so that reading them reports them (no silent drop)
        chosen = {valid[i] for i in keep} | {i for i, lab in enumerate(labels_only) if lab is None}
        sample_names = [sample_names[i] for i in sorted(chosen)]
    keep = even_subset(len(sample_names), limit)
    sample_names = [sample_names[i] for i in keep]
    if not sample_names:
        raise ValueError(f"{name}/{split}: the partition lists no samples")

    results: list = []
    first = None
    for sample in sample_names:            # the first readable sample fixes bands and shape
        results.append(read(sample))
        if not isinstance(results[-1], str):
            first = results[-1]
            break
    if first is None:
        raise FileNotFoundError(f"{name}/{split}: none of the {len(sample_names)} samples in "
                                f"{task_dir} could be read (first error: {results[0]})")
    ref_names, ref_shape = first[1], first[0].shape
    check_memory(len(sample_names), ref_shape, max_gib, f"{name}/{split}",
                 "pass limit=/limit_per_class= or a larger max_gib=")
    # pixels go straight into one preallocated array (no second copy of the dataset)
    buffer = np.empty((len(sample_names), *ref_shape), np.float32)
    buffer[len(results) - 1] = first[0]
    results[-1] = first[1:]

    def read_into(i: int) -> tuple[list[str], bool, Any] | str:
        res = read(sample_names[i])
        if isinstance(res, str):
            return res
        if res[1] != ref_names or res[0].shape != ref_shape:
            return f"bands {res[1]} / shape {res[0].shape} differ from {ref_names} / {ref_shape}"
        buffer[i] = res[0]
        return res[1:]

    results += parallel_map(read_into, list(range(len(results), len(sample_names))),
                            desc=f"read {name}/{split}", threads=2)
    ok: list[int] = []
    for i, (sample, res) in enumerate(zip(sample_names, results, strict=True)):
        if isinstance(res, str):
            log.skip(f"{sample}.hdf5", res)
        else:
            ok.append(i)
    notes = log.finish(len(sample_names))
    images = torch.from_numpy(buffer if len(ok) == len(buffer) else buffer[ok])
    raw_labels = [results[i][2] for i in ok]
    multilabel = isinstance(raw_labels[0], np.ndarray) and raw_labels[0].ndim == 1 \
        and raw_labels[0].size > 1
    if multilabel:
        labels = torch.from_numpy(np.stack([np.asarray(lab, np.float32) for lab in raw_labels]))
    else:
        labels = torch.tensor([int(np.asarray(lab).reshape(())) for lab in raw_labels],
                              dtype=torch.int64)

    names = list(ref_names)
    if any(results[i][1] for i in ok):
        notes.append("some bands had a coarser grid and were resampled bilinearly to the largest")
    divisor = _check_s2_scale(images, names)
    s2_idx = [i for i, n in enumerate(names) if is_s2(n)]
    if divisor != 1.0:
        images[:, s2_idx] /= divisor
        notes.append("Sentinel-2 channels stored as DN; divided by 10000 (units reflectance).")
    elif s2_idx:
        notes.append("Sentinel-2 channels already stored as reflectance (median < 20); not rescaled.")
    units = "reflectance" if s2_idx else ("rgb01" if all(is_rgb(n) for n in names) else "reflectance")
    if units == "rgb01":
        images /= 255.0
    if any(n.startswith("S1 ") for n in names):
        notes.append("Sentinel-1 channels (S1 …) are kept as stored (So2Sat LCZ42 values); "
                     "'units' refers to the Sentinel-2 channels only.")

    bands = tuple(names)
    if band_names is not None:
        if len(band_names) != len(bands):
            raise ValueError(f"band_names has {len(band_names)} names; {name} has {len(bands)} "
                             f"channels {bands}")
        bands = tuple(band_names)
        notes.append(f"band names overridden by the caller: {bands}")
    elif name == "m-eurosat" and fix_band_order and bands == S2_BANDS:
        bands = EUROSAT_MS_BANDS
        notes.append("m-eurosat band labels corrected: GEO-Bench labelled the EuroSAT file order "
                     "(B01..B12,B8A) as B01..B08,B8A,B09..B12 (ServiceNow/geo-bench#28); channels "
                     "are now named in file order. Pass fix_band_order=False to keep the labels.")
    if name == "m-brick-kiln" and band_names is None:
        notes.append("m-brick-kiln band labels are GEO-Bench's; ServiceNow/geo-bench#29 reports the "
                     "source exported B1,B2,B3,B4,B5,B7,B8A,B8,B11,B12,TCI_R,TCI_G,TCI_B instead "
                     "(unverified here; override with band_names=).")
    check = _band_order_check(images, bands)
    if check:
        warnings.warn(f"{name}: {check}", UserWarning, stacklevel=2)
        notes.append(check)

    classes = specs.get("classes") or tuple(
        registry_classes() if callable(registry_classes) else registry_classes)
    n_classes = labels.shape[1] if multilabel else (int(labels.max()) + 1 if len(labels) else 0)
    if not classes or len(classes) < n_classes:
        classes = tuple(f"class-{i}" for i in range(max(n_classes, specs.get("n_classes") or 0)))
        notes.append("class names not found in task_specs.pkl; generic names used")
    if limit is not None or limit_per_class is not None:
        notes.append(f"subset: limit={limit}, limit_per_class={limit_per_class}, seed={seed}")
    return ImageDataset(
        name=name, split=split, images=images, labels=labels, classes=tuple(classes),
        bands=bands, units=units, synthetic=False,
        paths=tuple(f"{sample_names[i]}.hdf5" for i in ok), notes=notes,
    )
