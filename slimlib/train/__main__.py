"""Command line: ``python -m slimlib.train --config <yaml> --data <name|folder> --out <dir>``.

``--data`` is a registered :mod:`slimlib.data` name (loaded in memory, e.g. ``eurosat-rgb``)
or a folder of images in class sub-folders (read lazily, resized to ``--load-size``; see
:class:`ImageFolderImages`). Re-running the same command resumes from ``<dir>/last.pt``.
``--set key=value`` overrides config entries (dotted names, YAML values), e.g.
``--set optim.steps=10 --set device=cuda``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from slimlib._imageio import IMAGE_SUFFIXES as _IMAGE_SUFFIXES
from slimlib._imageio import TIFF_SUFFIXES, read_image_chw
from slimlib.train.configs import load_config
from slimlib.train.loop import pretrain

#: Every format the one folder decoder (:func:`slimlib._imageio.read_image_chw`) reads.
IMAGE_SUFFIXES = _IMAGE_SUFFIXES + TIFF_SUFFIXES


class ImageFolderImages(Dataset):
    """Images under ``root`` (any depth), resized to ``size`` x ``size``, as float tensors.

    8-bit images (Pillow formats and uint8 TIFFs) are divided by 255 (``rgb01``); other
    ``.tif``/``.tiff`` are read with tifffile as float32 in their stored units (channels last
    is transposed), so a multispectral folder works as long as every file has the same band
    count (``mean: null`` then standardises whatever the units are).
    """

    def __init__(self, root: str | Path, size: int) -> None:
        self.root = Path(root)
        self.size = int(size)
        self.paths = sorted(str(p) for p in self.root.rglob("*")
                            if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {self.root}")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        array, dtype = read_image_chw(self.paths[index])
        if dtype == np.uint8:
            array = array / 255.0
        x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).unsqueeze(0)
        x = torch.nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear",
                                            align_corners=False, antialias=True)
        return x[0]


def _parse_value(text: str):
    import yaml

    return yaml.safe_load(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m slimlib.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True,
                        help="YAML file or packaged name, e.g. moco_vitb16_slimmable")
    parser.add_argument("--data", required=True,
                        help="slimlib.data name (e.g. eurosat-rgb) or an image folder")
    parser.add_argument("--split", default="train", help="split of a slimlib.data dataset")
    parser.add_argument("--out", required=True, help="run folder (checkpoints, loss.csv)")
    parser.add_argument("--load-size", type=int, default=None,
                        help="side images of a folder are resized to before random crops "
                             "(default: 8/7 of model.img_size)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config entry (repeatable)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="stop after this many steps (resume later)")
    parser.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)

    overrides = {}
    for item in args.set:
        if "=" not in item:
            parser.error(f"--set expects KEY=VALUE; got {item!r}")
        key, value = item.split("=", 1)
        overrides[key.strip()] = _parse_value(value)
    config = load_config(args.config, **overrides)

    if Path(args.data).is_dir():
        size = args.load_size or round(config.model.img_size * 8 / 7)
        data = ImageFolderImages(args.data, size)
    else:
        from slimlib import data as sdata

        data = sdata.load(args.data, args.split)
    result = pretrain(config, data, args.out, resume=not args.no_resume,
                      progress=not args.no_progress, max_steps=args.max_steps)
    summary = {"out": str(args.out), "step": result.step, "total": result.total,
               "elapsed_s": round(result.elapsed_s, 1),
               "final_loss": float(result.losses["loss_full"].iloc[-1])
               if len(result.losses) else None,
               "fingerprint": result.fingerprint}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
