"""ImageNet-10 and ImageNet-100 from a local ImageNet folder (``root=`` or ``$IMAGENET_DIR``).

The folder must have the ``ImageFolder`` layout ``train/<wnid>/*.JPEG`` and
``val/<wnid>/*.JPEG`` (the validation images sorted into class folders, e.g. with the
widely used ``valprep.sh``). ImageNet cannot be redistributed; slimlib never downloads it.

* **ImageNet-100** is the class list of Tian, Krishnan & Isola, "Contrastive Multiview
  Coding" (ECCV 2020), published as ``imagenet100.txt`` in github.com/HobbitLong/CMC.
* **ImageNet-10** is the 10-class subset of Chang et al., "Deep Adaptive Image
  Clustering" (ICCV 2017), the usual "ImageNet-10" of the clustering literature.

Images are decoded with PIL, converted to RGB, resized (shorter side to
``round(image_size * 256 / 224)``, bicubic) and centre-cropped to ``image_size`` — the
standard ImageNet evaluation transform — then stored as ``rgb01`` float32.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..settings import IMAGENET_ENV, Settings, or_current
from ..specs import ImageDataset
from ._common import SkipLog, check_limit, check_memory, parallel_map, stratified_subset
from .bands import RGB_BANDS

ENV = IMAGENET_ENV
SPLITS = ("train", "val")
SPLIT_ALIASES = {"valid": "val", "validation": "val", "test": "val"}
_EXTENSIONS = {".jpeg", ".jpg", ".png"}

#: ImageNet-100 (CMC, Tian et al. 2020), in the order of ``imagenet100.txt``.
IMAGENET100_WNIDS: tuple[str, ...] = (
    "n02869837", "n01749939", "n02488291", "n02107142", "n13037406", "n02091831", "n04517823",
    "n04589890", "n03062245", "n01773797", "n01735189", "n07831146", "n07753275", "n03085013",
    "n04485082", "n02105505", "n01983481", "n02788148", "n03530642", "n04435653", "n02086910",
    "n02859443", "n13040303", "n03594734", "n02085620", "n02099849", "n01558993", "n04493381",
    "n02109047", "n04111531", "n02877765", "n04429376", "n02009229", "n01978455", "n02106550",
    "n01820546", "n01692333", "n07714571", "n02974003", "n02114855", "n03785016", "n03764736",
    "n03775546", "n02087046", "n07836838", "n04099969", "n04592741", "n03891251", "n02701002",
    "n03379051", "n02259212", "n07715103", "n03947888", "n04026417", "n02326432", "n03637318",
    "n01980166", "n02113799", "n02086240", "n03903868", "n02483362", "n04127249", "n02089973",
    "n03017168", "n02093428", "n02804414", "n02396427", "n04418357", "n02172182", "n01729322",
    "n02113978", "n03787032", "n02089867", "n02119022", "n03777754", "n04238763", "n02231487",
    "n03032252", "n02138441", "n02104029", "n03837869", "n03494278", "n04136333", "n03794056",
    "n03492542", "n02018207", "n04067472", "n03930630", "n03584829", "n02123045", "n04229816",
    "n02100583", "n03642806", "n04336792", "n03259280", "n02116738", "n02108089", "n03424325",
    "n01855672", "n02090622",
)

#: ImageNet-10 (Chang et al. 2017): penguin, Maltese dog, snow leopard, airliner, airship,
#: container ship, soccer ball, sports car, trailer truck, orange.
IMAGENET10_WNIDS: tuple[str, ...] = (
    "n02056570", "n02085936", "n02128757", "n02690373", "n02692877", "n03095699", "n04254680",
    "n04285008", "n04467665", "n07747607",
)


def _root(root: str | os.PathLike | None, name: str, settings: Settings | None) -> Path:
    value = root if root is not None else or_current(settings).imagenet
    if not value:
        raise FileNotFoundError(
            f"{name!r} needs a local ImageNet copy: pass root=... or set ${ENV} to a folder with "
            f"train/<wnid>/ and val/<wnid>/ (ImageFolder layout). ImageNet is not downloadable "
            f"by slimlib (licence); get it from image-net.org.")
    path = Path(value).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{name!r}: ImageNet folder {str(path)!r} (from "
                                f"{'root=' if root is not None else ENV}) does not exist")
    return path


def _load_image(path: Path, image_size: int) -> np.ndarray:
    from PIL import Image

    resize = round(image_size * 256 / 224)
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        scale = resize / min(w, h)
        im = im.resize((max(resize, round(w * scale)), max(resize, round(h * scale))),
                       Image.Resampling.BICUBIC)
        w, h = im.size
        left, top = (w - image_size) // 2, (h - image_size) // 2
        return np.asarray(im.crop((left, top, left + image_size, top + image_size)))


def load_imagenet_subset(name: str, wnids: tuple[str, ...], split: str,
                         root: str | os.PathLike | None = None, *, image_size: int = 224,
                         limit_per_class: int | None = None, seed: int = 0,
                         max_gib: float | None = 16.0,
                         settings: Settings | None = None) -> ImageDataset:
    """Load ``split`` of the ImageNet classes ``wnids`` (labels follow the order of ``wnids``);
    ``root=None`` means ``settings.imagenet`` (``$IMAGENET_DIR``)."""
    limit_per_class = check_limit(limit_per_class)
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"image_size must be an int >= 8; got {image_size!r}")
    split_dir = _root(root, name, settings) / split
    if not split_dir.is_dir():
        raise FileNotFoundError(f"{name!r}: {str(split_dir)!r} is missing; the ImageNet folder "
                                f"needs train/ and val/ with one folder per wnid")
    missing = [w for w in wnids if not (split_dir / w).is_dir()]
    if missing:
        raise FileNotFoundError(f"{name!r}: {len(missing)} of {len(wnids)} class folders missing "
                                f"in {split_dir}: {missing[:5]}{' …' if len(missing) > 5 else ''}")
    files: list[Path] = []
    labels: list[int] = []
    for label, wnid in enumerate(wnids):
        found = sorted(p for p in (split_dir / wnid).iterdir() if p.suffix.lower() in _EXTENSIONS)
        files += found
        labels += [label] * len(found)
    keep = stratified_subset(labels, limit_per_class, seed)
    files, labels = [files[i] for i in keep], [labels[i] for i in keep]
    if not files:
        raise FileNotFoundError(f"{name!r}: no images under {split_dir}")
    check_memory(len(files), (3, image_size, image_size), max_gib, f"{name}/{split}",
                 "pass limit_per_class=, a smaller image_size= or a larger max_gib=")

    def decode(path: Path) -> np.ndarray | str:
        try:
            return _load_image(path, image_size)
        except Exception as err:  # noqa: BLE001
            return f"unreadable ({type(err).__name__}: {err})"

    arrays = parallel_map(decode, files, desc=f"decode {name}/{split}")
    log = SkipLog(name)
    ok = []
    for i, a in enumerate(arrays):
        if isinstance(a, str):
            log.skip(str(files[i]), a)
        else:
            ok.append(i)
    notes = log.finish(len(files))
    if not ok:
        raise FileNotFoundError(f"{name}/{split}: none of the {len(files)} images could be read")
    images = torch.from_numpy(np.stack([arrays[i] for i in ok])).permute(0, 3, 1, 2)
    notes.append(f"resize shorter side to {round(image_size * 256 / 224)} (bicubic), centre crop "
                 f"{image_size}")
    if limit_per_class is not None:
        notes.append(f"subset: at most {limit_per_class} images per class (seed={seed})")
    base = split_dir.parent
    return ImageDataset(
        name=name, split=split, images=images.float().div_(255).contiguous(),
        labels=torch.tensor([labels[i] for i in ok], dtype=torch.int64), classes=tuple(wnids),
        bands=RGB_BANDS, units="rgb01", synthetic=False,
        paths=tuple(str(files[i].relative_to(base)) for i in ok), notes=notes,
    )


def load_imagenet10(split: str, root=None, *, image_size: int = 224,
                    limit_per_class: int | None = None, seed: int = 0,
                    max_gib: float | None = 16.0,
                    settings: Settings | None = None) -> ImageDataset:
    return load_imagenet_subset("imagenet-10", IMAGENET10_WNIDS, split, root,
                                image_size=image_size, limit_per_class=limit_per_class, seed=seed,
                                max_gib=max_gib, settings=settings)


def load_imagenet100(split: str, root=None, *, image_size: int = 224,
                     limit_per_class: int | None = None, seed: int = 0,
                     max_gib: float | None = 16.0,
                     settings: Settings | None = None) -> ImageDataset:
    return load_imagenet_subset("imagenet-100", IMAGENET100_WNIDS, split, root,
                                image_size=image_size, limit_per_class=limit_per_class, seed=seed,
                                max_gib=max_gib, settings=settings)
