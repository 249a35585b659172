"""FER+ votes end to end: loading them, the three label modes, training on the taggers' shares,
evaluating against the majority with the FER2013 label beside it, and a fitted score temperature
that the runtime applies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fer_edge.cli import main
from fer_edge.labels import LABELS
from fer_edge.scores import (
    agreement_report,
    apply_temperature,
    clearly_shown_report,
    fit_temperature,
    reliability,
)
from fer_edge.training.data import load_dataset
from fer_edge.training.feed import Feed
from fer_edge.training.ferplus import UNSCORED, majority_labels, relabel, vote_shares
from tests.fixtures import calibrate_cli, train_cli, write_ferplus_csv

# FER+ column order: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
ANGRY, DISGUST, HAPPY, NEUTRAL = (LABELS.index(n) for n in ("angry", "disgust", "happy", "neutral"))


@pytest.fixture(scope="module")
def ferplus_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ferplus_csv(
        tmp_path_factory.mktemp("ferplus") / "ferplus.csv.gz", {"Training": 700, "PublicTest": 210}
    )


@pytest.mark.parametrize(
    ("votes", "expected"),
    [
        ([0, 8, 0, 0, 1, 0, 0, 0, 1, 0], HAPPY),
        ([4, 0, 0, 0, 4, 0, 0, 0, 2, 0], NEUTRAL),  # a tie goes to the first column, as FER+ does
        ([1, 0, 0, 0, 0, 3, 0, 0, 0, 0], DISGUST),
        ([2, 0, 0, 0, 0, 0, 0, 6, 2, 0], UNSCORED),  # contempt: not one of the product's classes
        ([2, 0, 0, 0, 0, 0, 0, 0, 8, 0], UNSCORED),  # unknown
        ([0, 1, 0, 0, 0, 0, 0, 0, 0, 9], UNSCORED),  # not a face
    ],
)
def test_majority_follows_fer_plus_protocol(votes: list[int], expected: int) -> None:
    assert majority_labels(np.array([votes]))[0] == expected


def test_shares_drop_contempt_unknown_and_not_a_face_and_can_count_the_fer2013_label() -> None:
    votes = np.array([[4, 0, 0, 0, 2, 0, 0, 2, 1, 1]])
    shares = vote_shares(votes)
    assert shares.sum() == pytest.approx(1.0)
    assert shares[0, NEUTRAL] == pytest.approx(4 / 6) and shares[0, ANGRY] == pytest.approx(2 / 6)
    with_label = vote_shares(votes, np.array([ANGRY]), fer2013_votes=1)
    assert with_label[0, ANGRY] == pytest.approx(3 / 7)


def test_loader_reads_votes_and_label_modes_pick_the_faces(ferplus_csv: Path, tmp_path: Path) -> None:
    dataset = load_dataset(ferplus_csv, cache_dir=tmp_path)
    cached = load_dataset(ferplus_csv, cache_dir=tmp_path)  # the cache keeps the votes
    train = dataset.splits["Training"]
    assert train.votes is not None and train.votes.shape == (700, 10)
    np.testing.assert_array_equal(cached.splits["Training"].votes, train.votes)
    assert relabel(train, "fer2013").labels is train.labels
    majority = relabel(train, "majority")
    left_out = (np.arange(700) % 20 == 19) | ((np.arange(700) % 31 == 30) & (np.arange(700) % 20 != 19))
    assert len(majority) == 700 - left_out.sum()
    votes = relabel(train, "votes")
    assert votes.targets is not None and votes.targets.shape == (len(majority), len(LABELS))
    np.testing.assert_array_equal(votes.targets.argmax(axis=1), votes.labels)


def test_label_modes_that_need_votes_refuse_data_without_them(
    tmp_path: Path, fer_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = train_cli("seed-004-m1", fer_csv, tmp_path / "run", "--epochs", "1", "--labels", "votes")
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vote columns" in err[0]
    assert not (tmp_path / "run").exists()


def test_incomplete_vote_columns_are_bad_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels,Usage,neutral,happiness\n3," + " ".join(["0"] * 2304) + ",Training,1,9\n")
    code = main(["-q", "evaluate", "--data", str(bad), "--cache-dir", "none"])
    assert code == 65
    assert "vote columns incomplete" in capsys.readouterr().err


def test_feed_yields_the_shares_with_their_class_weights(ferplus_csv: Path) -> None:
    split = relabel(load_dataset(ferplus_csv).splits["Training"], "votes")
    assert split.targets is not None
    feed = Feed(
        split.images,
        split.labels,
        len(LABELS),
        32,
        seed=3,
        class_weights=True,
        class_weight_power=0.5,
        soft_targets=split.targets,
    )
    _, targets, weights = next(feed.batches(0))
    order = np.random.default_rng([3, 0]).permutation(len(split))[:32]
    np.testing.assert_allclose(targets, split.targets[order])
    counts = split.targets.sum(axis=0)
    per_class = (len(split) / (len(LABELS) * counts)) ** 0.5
    np.testing.assert_allclose(weights, split.targets[order] @ per_class, rtol=1e-5)


@pytest.mark.slow
def test_training_on_votes_learns_what_the_taggers_agree_on(ferplus_csv: Path, tmp_path: Path) -> None:
    """The FER2013 labels here are right on 30% of the faces, the taggers' majority on all: a run
    on the votes must beat a run on the FER2013 labels, both scored against the majority."""
    scores = {}
    for mode in ("fer2013", "votes"):
        out = tmp_path / mode
        args = ("--epochs", "4", "--seed", "2", "--labels", mode)
        assert train_cli("seed-004-m1", ferplus_csv, out, *args) == 0
        report = json.loads((out / "report.json").read_text())
        assert report["labels"] == "ferplus-majority" and report["n"] == 210 - 10 - 6
        scores[mode] = report["accuracy"]
        assert json.loads((out / "model.json").read_text())["training"]["labels"] == mode
    assert scores["votes"] > 0.9
    assert scores["votes"] > scores["fer2013"] + 0.3


def test_reliability_of_a_calibrated_and_an_overconfident_model() -> None:
    rng = np.random.default_rng(0)
    shares = rng.dirichlet(np.full(len(LABELS), 0.5), 4000).astype(np.float32)
    honest = reliability(shares, shares)
    assert honest["ece"] == pytest.approx(0.0, abs=1e-6)
    overconfident = apply_temperature(shares, 0.4)
    assert reliability(overconfident, shares)["ece"] > 0.1
    assert sum(b["n"] for b in reliability(overconfident, shares)["bins"]) == 4000


def test_fitted_temperature_undoes_a_known_one() -> None:
    rng = np.random.default_rng(1)
    shares = rng.dirichlet(np.full(len(LABELS), 0.7), 3000).astype(np.float32)
    sharpened = apply_temperature(shares, 0.5)
    temperature = fit_temperature(sharpened, shares)
    assert temperature == pytest.approx(2.0, rel=0.02)
    fixed = apply_temperature(sharpened, temperature)
    assert agreement_report(fixed, shares)["ece"] < 0.2 * agreement_report(sharpened, shares)["ece"]
    np.testing.assert_array_equal(fixed.argmax(axis=1), sharpened.argmax(axis=1))


def test_clearly_shown_faces_expose_a_model_that_calls_unsure_faces_neutral() -> None:
    # four faces most taggers read one way (angry, fear, neutral, happy) and one split face
    shares = np.zeros((5, len(LABELS)), np.float32)
    for row, label in enumerate(["angry", "fear", "neutral", "happy"]):
        shares[row, LABELS.index(label)] = 0.8
        shares[row, LABELS.index("surprise")] = 0.2
    shares[4, LABELS.index("sad")] = shares[4, LABELS.index("neutral")] = 0.5
    neutral_always = np.zeros_like(shares)
    neutral_always[:, LABELS.index("neutral")] = 1.0
    report = clearly_shown_report(neutral_always, shares, LABELS)
    assert report["n"] == 4  # the split face is not shown clearly
    assert report["emotions_called_neutral"] == 1.0  # all three clear emotions called neutral
    assert report["per_class"]["neutral"] == {"n": 1, "recall": 1.0}
    assert report["per_class"]["fear"] == {"n": 1, "recall": 0.0}
    assert report["per_class"]["sad"] == {"n": 0, "recall": None}
    right = clearly_shown_report(shares, shares, LABELS)
    assert right["emotions_called_neutral"] == 0.0 and right["per_class"]["fear"]["recall"] == 1.0


@pytest.fixture(scope="module")
def votes_model(tmp_path_factory: pytest.TempPathFactory, ferplus_csv: Path) -> Path:
    out = tmp_path_factory.mktemp("votes-run")
    assert (
        train_cli("seed-004-m1", ferplus_csv, out, "--epochs", "3", "--seed", "1", "--labels", "votes") == 0
    )
    return out / "model.keras"


def test_evaluate_scores_against_the_majority_with_fer2013_beside_it(
    votes_model: Path, ferplus_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval.json"
    args = ["-q", "evaluate", "--model", str(votes_model), "--data", str(ferplus_csv), "--json", str(out)]
    assert main([*args, "--cache-dir", "none"]) == 0
    report = json.loads(out.read_text())
    assert report["split"] == "PublicTest" and report["labels"] == "ferplus-majority"
    assert report["n"] == 194 == report["fer2013"]["n"]  # the same faces, both ways
    assert report["fer2013"]["accuracy"] < report["accuracy"] - 0.3  # FER2013 is mostly wrong here
    assert 0 <= report["agreement"]["ece"] <= 1 and report["agreement"]["cross_entropy"] > 0
    assert sum(b["n"] for b in report["agreement"]["bins"]) == 194
    clear = report["clearly_shown"]
    assert 0 < clear["n"] <= 194 and sum(row["n"] for row in clear["per_class"].values()) == clear["n"]
    assert 0.0 <= clear["emotions_called_neutral"] <= 1.0
    png = out.with_suffix(".reliability.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_calibrate_fits_the_temperature_and_the_runtime_applies_it(
    votes_model: Path, ferplus_csv: Path, tmp_path: Path
) -> None:
    from fer_edge.runtime import EmotionModel
    from fer_edge.training.data import select_classes

    out = tmp_path / "votes-int8.tflite"
    report_path = tmp_path / "calib.json"
    extra = ("--calibration-size", "70", "--json", str(report_path))
    assert calibrate_cli(votes_model, ferplus_csv, "int8", out, *extra) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    fitted = meta["quantization"]["score_temperature"]
    assert meta["temperature"] == fitted["temperature"] != 1.0
    assert (
        fitted["cross_entropy_after"] <= fitted["cross_entropy_before"]
        and fitted["fitted_on"] == "PublicTest"
    )
    assert meta["metrics"]["labels"] == "ferplus-majority" and "fer2013_accuracy" in meta["metrics"]
    # the runtime's scores are the raw softmax at that temperature, with the same ranking
    model = EmotionModel(out)
    faces, _ = select_classes(load_dataset(ferplus_csv).splits["PublicTest"], LABELS)
    x = faces[:40, :, :, None].astype(np.float32)
    scored = model.predict(x)
    model.metadata.temperature = 1.0
    raw = model.predict(x)
    np.testing.assert_allclose(scored, apply_temperature(raw, fitted["temperature"]), atol=1e-6)
    np.testing.assert_array_equal(scored.argmax(axis=1), raw.argmax(axis=1))


@pytest.mark.parametrize("bad", [0, -1.5, "hot"])
def test_a_bad_temperature_in_metadata_is_one_line_naming_it(
    int8_model: Path, tmp_path: Path, bad: object
) -> None:
    import shutil

    from fer_edge.errors import DataError
    from fer_edge.runtime import EmotionModel

    copy = tmp_path / "m.tflite"
    shutil.copy(int8_model, copy)
    meta = json.loads(int8_model.with_suffix(".json").read_text())
    copy.with_suffix(".json").write_text(json.dumps({**meta, "temperature": bad}))
    with pytest.raises(DataError, match="temperature"):
        EmotionModel(copy)


def _posteriors(n: int, prior: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Faces' true class posteriors around ``prior``, and labels drawn from them."""
    rng = np.random.default_rng(seed)
    logits = np.log(prior) + 2.0 * rng.standard_normal((n, len(prior)))
    posterior = np.exp(logits - logits.max(axis=1, keepdims=True))
    posterior /= posterior.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(len(prior), p=row) for row in posterior])
    return posterior.astype(np.float32), y


PRIOR = np.array([0.09, 0.02, 0.05, 0.26, 0.15, 0.12, 0.31])


def test_a_prior_shift_undoes_what_class_weights_did_and_leaves_an_honest_model_alone() -> None:
    from fer_edge.scores import choose_prior_strength, prior_bias, rescale_scores

    posterior, y = _posteriors(8000, PRIOR, seed=3)
    weighted = posterior * PRIOR**-0.5  # what square-root balanced class weights teach a model
    weighted /= weighted.sum(axis=1, keepdims=True)
    choice = choose_prior_strength(weighted, y, LABELS, PRIOR)
    assert choice["strength"] > 0.2
    assert choice["chosen"]["accuracy"] > choice["unshifted"]["accuracy"] + 0.01
    assert choice["chosen"]["macro_f1"] >= choice["unshifted"]["macro_f1"]
    honest = choose_prior_strength(posterior, y, LABELS, PRIOR)
    assert abs(honest["strength"]) <= 0.1
    # the bias is centred log-prior times the strength, and rescaling keeps rows summing to 1
    bias = prior_bias(PRIOR, 0.5)
    assert sum(bias) == pytest.approx(0.0, abs=1e-3) and bias[1] < bias[3]
    shifted = rescale_scores(weighted[:50], 1.0, bias)
    np.testing.assert_allclose(shifted.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(shifted, posterior[:50], atol=1e-3)  # 0.5 undoes the weights exactly


def test_calibrate_refits_a_tflite_models_scores_without_converting_it(
    votes_model: Path, ferplus_csv: Path, tmp_path: Path
) -> None:
    from fer_edge.runtime import EmotionModel
    from fer_edge.scores import rescale_scores
    from fer_edge.training.data import select_classes

    quantised = tmp_path / "q.tflite"
    assert calibrate_cli(votes_model, ferplus_csv, "int8", quantised, "--calibration-size", "70") == 0
    rescored = tmp_path / "rescored.tflite"
    base = ["-q", "calibrate", "--model", str(quantised), "--data", str(ferplus_csv), "--cache-dir", "none"]
    assert main([*base, "--out", str(rescored), "--prior-shift", "0.5"]) == 0
    assert rescored.read_bytes() == quantised.read_bytes()  # the same flatbuffer
    meta = json.loads(rescored.with_suffix(".json").read_text())
    shift = meta["quantization"]["prior_shift"]
    assert shift["strength"] == 0.5 and len(meta["score_bias"]) == len(LABELS)
    assert meta["quantization"]["mode"] == "int8" and "score_temperature" in meta["quantization"]
    # the runtime applies the stored shift and temperature to every score it returns
    model = EmotionModel(rescored)
    faces, _ = select_classes(load_dataset(ferplus_csv).splits["PublicTest"], LABELS)
    x = faces[:40, :, :, None].astype(np.float32)
    scored = model.predict(x)
    model.metadata.temperature, model.metadata.score_bias = 1.0, []
    expected = rescale_scores(model.predict(x), meta["temperature"], meta["score_bias"])
    np.testing.assert_allclose(scored, expected, atol=1e-6)
    # auto: the rule's choice on the selection split, with the figures behind it
    auto = tmp_path / "auto.tflite"
    assert main([*base, "--out", str(auto)]) == 0
    chosen = json.loads(auto.with_suffix(".json").read_text())["quantization"]["prior_shift"]
    assert chosen["chosen_on"] == "PublicTest"
    assert chosen["chosen"]["macro_f1"] >= chosen["unshifted"]["macro_f1"]
    assert chosen["chosen"]["accuracy"] >= chosen["unshifted"]["accuracy"]


@pytest.mark.parametrize(("extra", "exit_code"), [(["--prior-shift", "hot"], 2), (["--mode", "float16"], 2)])
def test_calibrate_of_a_tflite_refuses_a_bad_shift_or_another_mode(
    int8_model: Path, ferplus_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    extra: list[str], exit_code: int,
) -> None:  # fmt: skip
    out = tmp_path / "m.tflite"
    argv = ["calibrate", "--model", str(int8_model), "--data", str(ferplus_csv), "--out", str(out)]
    assert main([*argv, "--cache-dir", "none", *extra]) == exit_code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ("prior-shift" in err or "already quantised (int8)" in err)
    assert not out.exists()


def test_a_score_bias_of_the_wrong_length_is_one_line_naming_it(int8_model: Path, tmp_path: Path) -> None:
    import shutil

    from fer_edge.errors import DataError
    from fer_edge.runtime import EmotionModel

    copy = tmp_path / "m.tflite"
    shutil.copy(int8_model, copy)
    meta = json.loads(int8_model.with_suffix(".json").read_text())
    copy.with_suffix(".json").write_text(json.dumps({**meta, "score_bias": [0.1, 0.2]}))
    with pytest.raises(DataError, match="score_bias"):
        EmotionModel(copy)
