"""Find or fetch pretrained checkpoints, failing fast and clearly when offline.

Resolution order for a :class:`Checkpoint` (shared by every registered model with weights):

1. ``checkpoint=`` given by the user (must exist; used as is);
2. the **weights root** ``<weights_root>/<file name>`` (``slimlib.models.load(weights=...)``,
   default ``Settings.weights``, i.e. ``$SLIMLIB_WEIGHTS`` read by :mod:`slimlib.settings`);
3. ``<cache>/weights/<file name>`` (``Settings.cache``, passed by ``models.load``);
4. torch hub's checkpoint folder (``torch.hub.get_dir()/checkpoints/<file name>``), where
   torchgeo/torchvision put their downloads;
5. the Hugging Face cache (``huggingface_hub.try_to_load_from_cache``) for hub-hosted files;
6. a download into (3), but only after a short connectivity probe (DNS + TCP, 3 s) of the
   URL's host succeeded. ``SLIMLIB_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` skip the probe.

A file name may hold a folder (``"galileo-nano/encoder.pt"``), so checkpoints that share a
base name do not collide. When a :class:`Checkpoint` has a ``sha256``, every local copy found
in (2)-(5) and every download is verified: a file with another hash is refused
(:class:`ChecksumMismatchError`) and a bad download is deleted. When nothing works,
:class:`WeightsUnavailableError` names the file, its URL and the folders to put it in by hand.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from slimlib import _io
from slimlib.settings import OFFLINE_ENVS

__all__ = [
    "Checkpoint",
    "ChecksumMismatchError",
    "WeightsUnavailableError",
    "sha256sum",
    "weights_root",
    "is_online",
    "local_candidates",
    "resolve",
    "read_state_dict",
]

PROBE_TIMEOUT_S = 3.0


class WeightsUnavailableError(FileNotFoundError):
    """A pretrained checkpoint is neither on disk nor downloadable right now."""


class ChecksumMismatchError(ValueError):
    """A checkpoint file's sha256 differs from the published one."""


@dataclass(frozen=True)
class Checkpoint:
    """Where a model's pretrained weights come from.

    Attributes:
        url: direct download URL.
        filename: the local file name slimlib looks for (normally the URL's last part); may
            include a folder, e.g. ``"galileo-nano/encoder.pt"``.
        hf_repo, hf_filename: Hugging Face repo id and file, when hub-hosted (used to find
            files already in the Hugging Face cache).
        sha256: the published file's sha256 (hex); local copies and downloads are verified.
    """

    url: str
    filename: str
    hf_repo: str | None = None
    hf_filename: str | None = None
    hf_revision: str | None = None
    sha256: str | None = None

    @classmethod
    def from_url(cls, url: str) -> Checkpoint:
        """A checkpoint whose local name is the URL's last path component.

        Hugging Face URLs (``https://hf.co/<org>/<repo>/resolve/<rev>/<file>``) also record
        the repo, file and revision so a copy in the Hugging Face cache is found.
        """
        parsed = urlparse(url)
        parts = parsed.path.strip("/").split("/")
        name = Path(parsed.path).name
        if parsed.hostname in ("hf.co", "huggingface.co") and len(parts) >= 5 \
                and parts[2] == "resolve":
            return cls(url=url, filename=name, hf_repo="/".join(parts[:2]),
                       hf_filename="/".join(parts[4:]), hf_revision=parts[3])
        return cls(url=url, filename=name)

    @classmethod
    def from_hf(cls, repo: str, filename: str, local_name: str | None = None,
                revision: str = "main", sha256: str | None = None) -> Checkpoint:
        """A file of the Hugging Face repo ``repo``, saved locally as ``local_name``."""
        url = f"https://huggingface.co/{repo}/resolve/{revision}/{filename}"
        return cls(url=url, filename=local_name or Path(filename).name, hf_repo=repo,
                   hf_filename=filename, hf_revision=revision, sha256=sha256)


def _offline_by_env() -> bool:
    from slimlib.settings import env_flag

    return env_flag(*OFFLINE_ENVS)


def is_online(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether the host of ``url`` answers a TCP connection on its port within ``timeout``.

    DNS resolution runs in a daemon thread so a hanging resolver cannot block the caller
    for longer than ``timeout`` seconds.
    """
    if _offline_by_env():
        return False
    parsed = urlparse(url)
    host = parsed.hostname
    if not host:
        return False
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True, name="slimlib-probe")
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def sha256sum(path: str | os.PathLike) -> str:
    """Hex sha256 of a file (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


#: The weights root of the current :func:`slimlib.models.load` call (see :func:`weights_root`).
_WEIGHTS_ROOT: contextvars.ContextVar[str | os.PathLike | None] = contextvars.ContextVar(
    "slimlib_weights_root", default=None)


#: The cache folder of the current :func:`slimlib.models.load` call (``<cache>/weights``).
_CACHE_ROOT: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "slimlib_cache_root", default=None)


@contextlib.contextmanager
def weights_root(root: str | os.PathLike | None, *,
                 cache: str | os.PathLike | None = None) -> Iterator[None]:
    """Within the block, :func:`resolve` searches ``root`` first (``None``: no weights root)
    and uses ``<cache>/weights`` as its cache (``None``: the caller's settings).

    :func:`slimlib.models.load` wraps every loader in it, so the settings reach each model's
    own resolution without a global and without reading the environment here.
    """
    token = _WEIGHTS_ROOT.set(root)
    cache_token = _CACHE_ROOT.set(None if cache is None else Path(cache))
    try:
        yield
    finally:
        _CACHE_ROOT.reset(cache_token)
        _WEIGHTS_ROOT.reset(token)


def weights_cache() -> Path:
    """``<cache>/weights`` (created on demand): the cache of the enclosing
    :func:`weights_root` block, else of :func:`slimlib.settings.current` (a direct call of
    :func:`resolve` / :func:`local_candidates` from user code is an entry point)."""
    base = _CACHE_ROOT.get()
    if base is None:
        from slimlib.settings import current

        base = current().cache
    path = Path(base) / "weights"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _check_root(weights_root: str | os.PathLike | None) -> Path | None:
    if weights_root is None:
        weights_root = _WEIGHTS_ROOT.get()
    if weights_root is None or str(weights_root) == "":
        return None
    root = Path(weights_root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"weights root {str(weights_root)!r} (weights= or $SLIMLIB_WEIGHTS) is not a folder; "
            "point it at the folder that holds <model>/<file> checkpoints, or unset it")
    return root


def local_candidates(ckpt: Checkpoint, weights_root: str | os.PathLike | None = None
                     ) -> list[Path]:
    """Paths checked, in order, before any download (the weights root first, when given)."""
    root = _check_root(weights_root)
    paths = [root / ckpt.filename] if root is not None else []
    paths += [weights_cache() / ckpt.filename,
              Path(torch.hub.get_dir()) / "checkpoints" / ckpt.filename]
    if ckpt.hf_repo and ckpt.hf_filename:
        try:
            from huggingface_hub import try_to_load_from_cache

            hit = try_to_load_from_cache(ckpt.hf_repo, ckpt.hf_filename,
                                         revision=ckpt.hf_revision)
            if isinstance(hit, str):
                paths.append(Path(hit))
        except Exception:  # noqa: BLE001 - the HF cache is only a convenience
            pass
    return paths


def _unavailable(name: str, ckpt: Checkpoint, why: str,
                 weights_root: Path | None = None) -> WeightsUnavailableError:
    target = weights_cache() / ckpt.filename
    root_hint = (f"{weights_root / ckpt.filename} (the weights root) or "
                 if weights_root is not None else
                 f"<weights root>/{ckpt.filename} (pass weights= or set SLIMLIB_WEIGHTS) or ")
    checksum = f" (sha256 {ckpt.sha256})" if ckpt.sha256 else ""
    searched = ", ".join(str(p.parent) for p in local_candidates(ckpt, weights_root))
    return WeightsUnavailableError(
        f"Pretrained weights for {name!r} are not available: {why}. "
        f"Download {ckpt.url}{checksum} on a machine with internet access and save it as "
        f"{root_hint}{target} "
        f"(or pass checkpoint='/path/to/{ckpt.filename}' to slimlib.models.load). "
        f"Folders searched: {searched}. "
        "Use pretrained=False for the architecture with random weights."
    )


def _verify(name: str, ckpt: Checkpoint, path: Path) -> Path:
    """``path`` if its sha256 is the published one (or none is published), else raise."""
    if ckpt.sha256 is None:
        return path
    actual = sha256sum(path)
    if actual != ckpt.sha256.lower():
        raise ChecksumMismatchError(
            f"{path} is not the published checkpoint of {name!r}: its sha256 is {actual}, "
            f"expected {ckpt.sha256} ({ckpt.url}). Delete or replace the file (a partial or "
            "different download?); slimlib does not load unverified weights from its search "
            "folders. To use a different file on purpose, pass checkpoint='/path/to/file'.")
    return path


def resolve(name: str, ckpt: Checkpoint, checkpoint: str | os.PathLike | None = None,
            *, weights_root: str | os.PathLike | None = None, download: bool = True,
            progress: bool = True) -> Path:
    """Local path of ``ckpt`` (downloading it when online), or raise fast.

    Args:
        name: the model name (for messages).
        ckpt: where the published weights come from.
        checkpoint: an explicit file; used as is (no checksum: it may be your own weights).
        weights_root: a folder searched first, as ``<weights_root>/<ckpt.filename>``; default
            the one set by :func:`weights_root` (i.e. by ``slimlib.models.load(weights=...)``).
        download: allow a download when no local copy exists.
        progress: show a download progress bar.

    Raises:
        FileNotFoundError: ``checkpoint`` was given but does not exist, or ``weights_root``
            is not a folder.
        ChecksumMismatchError: a local copy (or the download) has the wrong sha256.
        WeightsUnavailableError: no local copy and the host is unreachable (or the download
            failed); the message says where to put the file by hand.
    """
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint={str(checkpoint)!r} for {name!r} is not a file")
        return path
    root = _check_root(weights_root)
    for path in local_candidates(ckpt, root):
        if path.is_file():
            return _verify(name, ckpt, path)
    if not download:
        raise _unavailable(name, ckpt, "no local copy and download=False", root)
    if not is_online(ckpt.url):
        host = urlparse(ckpt.url).hostname
        reason = ("offline mode is set (" + "/".join(OFFLINE_ENVS) + ")" if _offline_by_env()
                  else f"no local copy and {host} is unreachable")
        raise _unavailable(name, ckpt, reason, root)
    target = weights_cache() / ckpt.filename
    with _io.atomic_path(target, suffix=".part", fsync=False) as tmp:
        try:
            torch.hub.download_url_to_file(ckpt.url, str(tmp), progress=progress)
        except Exception as err:  # noqa: BLE001 - any network/HTTP failure means "unavailable"
            raise _unavailable(name, ckpt, f"download failed ({type(err).__name__}: {err})",
                               root) from err
        _verify(name, ckpt, tmp)
    return target


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a ``.pth``/``.pt``/``.bin`` or ``.safetensors`` state dict onto the CPU.

    Unwraps the common containers ``{"state_dict": ...}`` and ``{"model": ...}``.
    """
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as err:  # noqa: BLE001 - every decoder error means the same to a user
        # torch's own message suggests weights_only=False, i.e. executing the file's pickle
        # code; a truncated download or a wrong file needs a fresh download instead.
        size = path.stat().st_size if path.is_file() else 0
        raise ValueError(
            f"{path} ({size:,} bytes) is not a readable checkpoint: it could not be decoded as "
            f"a {'safetensors' if path.suffix == '.safetensors' else 'PyTorch'} file of tensors "
            f"({type(err).__name__}). It is probably truncated (an interrupted download) or not "
            "a checkpoint at all: delete it and download it again. slimlib reads only tensors "
            "and never executes code stored in a checkpoint (a file holding other Python "
            "objects must be re-saved as a plain state dict of tensors)."
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor)
                                                 for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return dict(state)
