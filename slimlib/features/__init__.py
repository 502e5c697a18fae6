"""Stage 3 — features: frozen features of a (slimmed) encoder, with an atomic on-disk cache.

:func:`extract` runs an encoder over a dataset in batches and caches the ``(N, D)`` features
under a key built from what identifies them (:func:`feature_key`: the module's weights and
structure, the data, the preprocessing and the precision). See ``docs/sweep.md``.

Private modules: ``_extract`` (batches, devices, the cache round trip) and ``_cache``
(fingerprints, keys, the file format).
"""

from slimlib.features._cache import (
    CACHE_FORMAT,
    as_prepared_pair,
    cache_dir_path,
    cache_path,
    labels_digest,
    load_cached,
    save_cached,
)
from slimlib.features._extract import (
    MAX_PREPARED_GIB,
    data_fingerprint,
    extract,
    feature_key,
    module_fingerprint,
    precision,
    preparation_notes,
    prepare_dataset,
    prepared_gib,
    preprocessing_id,
    resolve_device,
)

__all__ = ["extract", "data_fingerprint", "module_fingerprint", "feature_key",
           "preprocessing_id", "precision", "resolve_device"]

#: The cache plumbing the sweep drives directly (it prepares inputs once per dataset and reads
#: and writes cache entries itself); importable from here, not part of what users call.
PLUMBING = (CACHE_FORMAT, as_prepared_pair, cache_dir_path, cache_path, labels_digest,
            load_cached, save_cached, prepare_dataset, preparation_notes, prepared_gib,
            MAX_PREPARED_GIB)
