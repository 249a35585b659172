"""Dataset loading: FER2013 CSV(.gz), image folders, the cache, and every bad-input path."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from fer_edge.cli import main
from fer_edge.errors import DataError, MissingInputError, UsageError
from fer_edge.labels import LABELS
from fer_edge.training.data import load_dataset
from tests.fixtures import synthetic_faces, train_cli, write_fer_csv, write_image_folder


@pytest.mark.parametrize("gz", [False, True])
def test_fer_csv_splits_and_labels(tmp_path: Path, gz: bool) -> None:
    path = write_fer_csv(
        tmp_path / ("f.csv.gz" if gz else "f.csv"),
        {"Training": 21, "PublicTest": 14, "PrivateTest": 7},
        gz=gz,
    )
    ds = load_dataset(path)
    assert {k: len(v) for k, v in ds.splits.items()} == {
        "Training": 21,
        "PublicTest": 14,
        "PrivateTest": 7,
    }
    images, labels = synthetic_faces(21, 0)
    assert np.array_equal(ds.splits["Training"].images, images)
    assert np.array_equal(ds.splits["Training"].labels, labels)
    assert ds.get(None)[0] == "PrivateTest"  # the contract's default split
    assert ds.get("publictest")[0] == "PublicTest"
    with pytest.raises(UsageError, match="no such split"):
        ds.get("Nope")


def test_default_split_falls_back_to_publictest_then_all(tmp_path: Path) -> None:
    ds = load_dataset(write_fer_csv(tmp_path / "f.csv", {"Training": 7, "PublicTest": 7}))
    assert ds.get(None)[0] == "PublicTest"
    ds = load_dataset(write_fer_csv(tmp_path / "g.csv", {"Training": 7}))
    name, split = ds.get(None)
    assert name == "all" and len(split) == 7


def test_csv_without_usage_column_is_one_split(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("emotion,pixels\n3," + " ".join(["9"] * 2304) + "\n")
    assert list(load_dataset(path).splits) == ["all"]


def test_other_image_sizes_are_resized(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("emotion,pixels,Usage\n1," + " ".join(["9"] * 64 * 64) + ",Training\n")
    assert load_dataset(path, size=48).splits["Training"].images.shape == (1, 48, 48)


def test_cache_makes_the_second_load_skip_parsing(tmp_path: Path) -> None:
    path = write_fer_csv(tmp_path / "f.csv", {"Training": 14, "PublicTest": 7})
    cache = tmp_path / "cache"
    first = load_dataset(path, cache_dir=cache)
    files = list(cache.glob("*.npz"))
    assert len(files) == 1
    files[0].touch()
    second = load_dataset(path, cache_dir=cache)
    assert np.array_equal(first.splits["Training"].images, second.splits["Training"].images)
    # a changed source gets a new cache entry
    write_fer_csv(path, {"Training": 7}, seed=5)
    third = load_dataset(path, cache_dir=cache)
    assert len(third.splits["Training"]) == 7 and len(list(cache.glob("*.npz"))) == 2


BAD_ROWS = [
    ("3," + " ".join(["1"] * 2000) + ",Training", r"f\.csv:2: pixels: .*received 2000"),
    ("7," + " ".join(["1"] * 2304) + ",Training", r"f\.csv:2: emotion: 7 is outside 0\.\.6"),
    ("x," + " ".join(["1"] * 2304) + ",Training", r"f\.csv:2: emotion: 'x' is not an integer"),
    ("3," + " ".join(["1"] * 2303) + " 300,Training", r"f\.csv:2: pixels: values must lie"),
    ("3,1 2 a,Training", r"f\.csv:2: pixels: not a list of integers"),
    ("3," + " ".join(["1"] * 2304), r"f\.csv:2: expected 3 fields, received 2"),
]


@pytest.mark.parametrize(("row", "message"), BAD_ROWS)
def test_malformed_rows_name_file_line_and_field(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "f.csv"
    path.write_text("emotion,pixels,Usage\n" + row + "\n")
    with pytest.raises(DataError, match=message):
        load_dataset(path)


def test_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("label,pixels\n3,1\n")
    with pytest.raises(DataError, match=r"f\.csv:1: missing column 'emotion'"):
        load_dataset(path)


def test_image_folder_with_splits_and_synonyms(tmp_path: Path) -> None:
    names = {"angry": "anger", "happy": "Happiness", "sad": "sadness", "surprise": "surprised"}
    names |= {label: label for label in LABELS if label not in names}
    write_image_folder(tmp_path / "ds" / "train", 2, names)
    write_image_folder(tmp_path / "ds" / "test", 1, names, seed=3)
    ds = load_dataset(tmp_path / "ds")
    assert {k: len(v) for k, v in ds.splits.items()} == {"Training": 14, "test": 7}
    assert sorted(set(ds.splits["Training"].labels.tolist())) == list(range(7))
    assert ds.selection()[0] == "test"


def test_splitless_folder_skips_unknown_classes_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_image_folder(tmp_path / "ck", 2, {"happy": "happy", "sad": "sad"})
    write_image_folder(tmp_path / "ck", 1, {"neutral": "contempt"}, seed=9)
    with caplog.at_level(logging.WARNING):
        ds = load_dataset(tmp_path / "ck")
    assert list(ds.splits) == ["all"] and len(ds.splits["all"]) == 4
    assert "contempt" in caplog.text


@pytest.mark.parametrize("make", ["empty", "no_images", "corrupt"])
def test_unusable_folders_are_data_errors(tmp_path: Path, make: str) -> None:
    root = tmp_path / "ds"
    root.mkdir()
    if make != "empty":
        (root / "happy").mkdir()
    if make == "corrupt":
        (root / "happy" / "a.png").write_bytes(b"not a png")
    with pytest.raises(DataError):
        load_dataset(root)


def test_missing_path_is_a_missing_input(tmp_path: Path) -> None:
    with pytest.raises(MissingInputError):
        load_dataset(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("content", "code", "needle"),
    [
        ("emotion,pixels,Usage\n9," + " ".join(["1"] * 2304) + ",Training\n", 65, "emotion: 9"),
        (None, 66, "no such file"),
    ],
)
def test_cli_bad_data_is_one_line_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, code: int, needle: str
) -> None:
    data = tmp_path / "bad.csv"
    if content is not None:
        data.write_text(content)
    out = tmp_path / "out"
    assert train_cli("seed-002", data, out) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "Traceback" not in err[0]
    assert not out.exists()


def test_cli_unknown_arch_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fer_csv: Path
) -> None:
    assert main(["train", "--arch", "resnet-9000", "--data", str(fer_csv), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown architecture" in err and "seed-002" in err and "Traceback" not in err
