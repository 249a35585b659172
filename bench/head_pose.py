"""How good is the head yaw the daemon derives from BlazeFace's keypoints?

No pose-labelled faces ship with the data, so the check is threefold, on held-out FER2013
PublicTest faces (original pixels) pasted at 144 px into a 640x480 frame and found by the
daemon's own detector:
- symmetry: a face and its mirror image must give opposite yaws (``|yaw + yaw_mirrored|``);
- frontal faces: the share of faces within the attention and turned-away thresholds (FER2013's
  faces were picked by a face finder and are mostly frontal);
- by eye: a montage of faces sorted by their estimated yaw (``--montage``), from most turned to
  the image's left to most turned to its right, with the yaw written under each: a person can
  check that the order and the magnitudes are right.

    python bench/head_pose.py --data ../shared/data/fer2013plus.csv.gz --faces 600 \
        --montage docs/bench/head-pose.png --json docs/bench/head-pose.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_edge.daemon.config import DetectorConfig
from fer_edge.daemon.detect import create_detector
from fer_edge.daemon.pose import head_pose
from fer_edge.training.data import load_dataset

SIDE, FRAME = 144, (480, 640)


def _pasted(face: np.ndarray) -> np.ndarray:
    frame = np.full(FRAME, 110, np.uint8)
    y, x = (FRAME[0] - SIDE) // 2, (FRAME[1] - SIDE) // 2
    frame[y : y + SIDE, x : x + SIDE] = cv2.resize(face, (SIDE, SIDE), interpolation=cv2.INTER_CUBIC)
    return frame


def measure(faces: np.ndarray) -> list[tuple[int, float, float]]:
    """(face index, yaw, yaw of its mirror image) for every face found both ways."""
    detector = create_detector(DetectorConfig(kind="blazeface"))
    out = []
    for i, face in enumerate(faces):
        frame = _pasted(face)
        poses = []
        for view in (frame, np.ascontiguousarray(frame[:, ::-1])):
            found = detector.detect(view)
            pose = head_pose(found[0].keypoints) if found else None
            poses.append(pose)
        if poses[0] is not None and poses[1] is not None:
            out.append((i, poses[0].yaw_deg, poses[1].yaw_deg))
    return out


def montage(faces: np.ndarray, rows: list[tuple[int, float, float]], path: Path, per_row: int = 12) -> None:
    """Faces at evenly spaced ranks of estimated yaw, with the yaw under each."""
    ranked = sorted(rows, key=lambda r: r[1])
    pick = [ranked[round(k)] for k in np.linspace(0, len(ranked) - 1, per_row * 4)]
    tiles = []
    for i, yaw, _ in pick:
        tile = cv2.cvtColor(cv2.resize(faces[i], (96, 96), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR)
        tile = cv2.copyMakeBorder(tile, 0, 22, 2, 2, cv2.BORDER_CONSTANT, value=(255, 255, 255))
        cv2.putText(tile, f"{yaw:+.0f}", (30, 114), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(tile)
    grid = [np.hstack(tiles[r * per_row : (r + 1) * per_row]) for r in range(4)]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.vstack(grid))


def report(rows: list[tuple[int, float, float]], asked: int) -> dict[str, Any]:
    yaw = np.array([r[1] for r in rows])
    mirrored = np.array([r[2] for r in rows])
    return {
        "faces": asked,
        "found_both_ways": len(rows),
        "mirror_sum_abs_deg": {
            "median": round(float(np.median(np.abs(yaw + mirrored))), 2),
            "p90": round(float(np.percentile(np.abs(yaw + mirrored), 90)), 2),
        },
        "mirror_sign_opposite": round(float(np.mean(np.sign(yaw) != np.sign(mirrored))), 4),
        "abs_yaw_deg": {p: round(float(np.percentile(np.abs(yaw), p)), 1) for p in (25, 50, 75, 90)},
        "share_attention_30": round(float(np.mean(np.abs(yaw) <= 30)), 4),
        "share_turned_away_45": round(float(np.mean(np.abs(yaw) > 45)), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="PublicTest")
    parser.add_argument("--faces", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--montage", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    _, split = load_dataset(args.data).get(args.split)
    pick = np.random.default_rng(args.seed).permutation(len(split))[: args.faces]
    faces = split.images[pick]
    rows = measure(faces)
    result = report(rows, len(faces))
    print(json.dumps(result, indent=2))
    if args.montage:
        montage(faces, rows, args.montage)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
