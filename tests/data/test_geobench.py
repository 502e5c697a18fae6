"""GEO-Bench download: the one Hugging Face fetch both loaders use, against a fake hub."""

from __future__ import annotations

import zipfile

import pytest

from slimlib.data import geobench


def _fake_hub(monkeypatch, tmp_path, files: dict[str, dict[str, str]]):
    """Serve ``{repo path: {member: text}}`` zips through stand-ins of the hub functions."""
    import huggingface_hub

    store = tmp_path / "hub"
    store.mkdir()

    class Api:
        def list_repo_files(self, repo, repo_type=None):
            assert repo == geobench.HF_REPO and repo_type == "dataset"
            return [*files, "README.md"]

    def download(repo, *, filename, repo_type, local_dir):
        path = store / filename.replace("/", "_")
        with zipfile.ZipFile(path, "w") as zf:
            for member, text in files[filename].items():
                zf.writestr(member, text)
        return str(path)

    monkeypatch.setattr(huggingface_hub, "HfApi", Api)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)


def test_fetch_task_unpacks_the_one_task_folder(monkeypatch, tmp_path):
    _fake_hub(monkeypatch, tmp_path, {
        "segmentation_v1.0/m-cashew.zip": {"m-cashew/x_partition.json": "{}",
                                           "m-cashew/id_0.hdf5": "data"}})
    bench = tmp_path / "root" / "segmentation_v1.0"
    target = geobench.fetch_task("m-cashew", bench, partition_glob="*_partition.json")
    assert target == bench / "m-cashew"
    assert (target / "id_0.hdf5").read_text() == "data"
    assert [p.name for p in bench.iterdir()] == ["m-cashew"]  # no temporary folder left


def test_fetch_task_refuses_a_missing_or_ambiguous_task(monkeypatch, tmp_path):
    _fake_hub(monkeypatch, tmp_path, {
        "classification_v1.0/m-two.zip": {"a/default_partition.json": "{}",
                                          "b/default_partition.json": "{}"}})
    bench = tmp_path / "classification_v1.0"
    with pytest.raises(FileNotFoundError, match="m-none"):
        geobench.fetch_task("m-none", bench, partition_glob="default_partition.json")
    with pytest.raises(ValueError, match="2 task folders"):
        geobench.fetch_task("m-two", bench, partition_glob="default_partition.json")
    assert not (bench / "m-two").exists()
