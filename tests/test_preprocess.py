"""The one preprocessing path: labels, gray conversion, crops with margin, scaling."""

from __future__ import annotations

import numpy as np
import pytest

from fer_edge.labels import LABELS, canonical_label
from fer_edge.preprocess import InputSpec, crop_face, preprocess_faces, scale_pixels, to_gray


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Anger", "angry"),
        ("happiness", "happy"),
        ("SADNESS", "sad"),
        ("surprised", "surprise"),
        ("neutral", "neutral"),
        ("fearful", "fear"),
        ("contempt", None),
        ("", None),
    ],
)
def test_canonical_label(name: str, expected: str | None) -> None:
    assert canonical_label(name) == expected


def test_labels_are_fer2013_order() -> None:
    assert LABELS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@pytest.mark.parametrize("shape", [(20, 30), (20, 30, 1), (20, 30, 3), (20, 30, 4)])
def test_to_gray_accepts_common_layouts(shape: tuple[int, ...]) -> None:
    gray = to_gray(np.full(shape, 100, np.uint8))
    assert gray.shape == (20, 30) and gray.dtype == np.uint8 and int(gray[0, 0]) == 100


def test_to_gray_rejects_odd_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        to_gray(np.zeros((4, 4, 2), np.uint8))


def test_crop_whole_image_when_no_box() -> None:
    image = np.arange(96 * 96, dtype=np.uint32).reshape(96, 96).astype(np.uint8)
    assert crop_face(image, None, 48).shape == (48, 48)


def test_crop_with_margin_is_centred_on_the_box() -> None:
    frame = np.zeros((200, 300, 3), np.uint8)
    frame[50:100, 100:150] = 255  # a white "face" 50x50
    crop = crop_face(frame, (100, 50, 50, 50), 48, margin=0.25)
    # margin 0.25 on each side: the face fills the middle 2/3 of the crop
    assert crop[24, 24] == 255 and crop[2, 2] == 0
    assert abs(int(crop[:, 24].astype(bool).sum()) - 32) <= 2


def test_crop_near_the_edge_replicates_the_border() -> None:
    frame = np.full((100, 100), 7, np.uint8)
    crop = crop_face(frame, (0, 0, 40, 40), 48, margin=0.5)
    assert crop.shape == (48, 48) and (crop == 7).all()


def test_crop_outside_the_frame_is_an_error() -> None:
    with pytest.raises(ValueError, match="outside"):
        crop_face(np.zeros((50, 50), np.uint8), (500, 500, 10, 10), 48, margin=0.0)


def test_scale_pixels_applies_the_model_normalisation() -> None:
    crops = np.full((2, 48, 48), 255, np.uint8)
    x = scale_pixels(crops, InputSpec(scale=1 / 127.5, offset=-1.0))
    assert x.shape == (2, 48, 48, 1) and x.dtype == np.float32
    assert np.allclose(x, 1.0)
    rgb = scale_pixels(crops, InputSpec(channels=3))
    assert rgb.shape == (2, 48, 48, 3) and np.allclose(rgb, 255.0)


def test_preprocess_faces_batches_every_box() -> None:
    frame = np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8)
    batch = preprocess_faces(frame, [(10, 10, 40, 40), (80, 30, 50, 60)], InputSpec())
    assert batch.shape == (2, 48, 48, 1)
    assert preprocess_faces(frame, [], InputSpec()).shape == (0, 48, 48, 1)


def test_video_range_luma_is_expanded_on_the_crops_only() -> None:
    spec = InputSpec(size=8, channels=1, scale=1.0, offset=0.0, margin=0.0)
    frame = np.full((32, 32), 16, np.uint8)  # video black
    frame[:, 16:] = 235  # video white
    boxes = [(0, 0, 16, 16), (16, 0, 16, 16)]
    full = preprocess_faces(frame, boxes, spec, video_range=True)
    assert full[0].max() == 0 and full[1].min() == 255
    untouched = preprocess_faces(frame, boxes, spec)
    assert untouched[0].max() == 16 and untouched[1].min() == 235
    assert frame.min() == 16  # the frame itself is left as it came


def test_frame_luma_reports_video_range_without_touching_the_plane() -> None:
    import av

    from fer_edge.daemon.decode import frame_luma

    rgb = np.full((16, 16, 3), 255, np.uint8)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    luma, video_range = frame_luma(frame)
    assert video_range and luma.shape == (16, 16) and 230 <= int(luma.max()) <= 236
