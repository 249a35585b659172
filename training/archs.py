"""Model architectures selectable with ``fer-edge train --arch NAME``, each with its paper's recipe.

Every model takes raw gray pixels (0..255, float) of shape ``size x size x 1`` and rescales inside
the graph, so full-int8 models see each pixel exactly. The ``seed-*`` architectures reproduce the
research this product comes from; ``edge`` is the product's own camera-box model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
from keras import layers

from fer_edge.errors import MissingInputError, UsageError


@dataclass(frozen=True)
class Recipe:
    """The training recipe an architecture's source used; every field can be overridden on the CLI."""

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 64
    epochs: int = 30
    schedule: str = "none"  # none | plateau | cosine
    warmup: int = 5  # cosine: epochs of linear warm-up
    patience: int = 10  # early stopping, epochs without a better selection accuracy
    label_smoothing: float = 0.0
    augment: str = "none"  # none | basic | strong
    class_weights: bool = False
    weight_decay: float = 0.0
    eye_band_rate: float = 0.15  # share of faces given a glasses-like band (``strong`` only)


@dataclass(frozen=True)
class Arch:
    name: str
    build: Callable[..., keras.Model]
    recipe: Recipe


def _inputs(size: int) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    inputs = keras.Input((size, size, 1), name="face")
    return inputs, layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)


def _conv_bn_relu(x: Any, filters: int, name: str, kernel: int = 3) -> Any:
    x = layers.Conv2D(filters, kernel, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_seed_002(num_classes: int, size: int = 48) -> keras.Model:
    """Tiahunova et al.: 3 conv blocks (32, 64, 128; BN, ReLU, 2x2 max-pool), dense 132."""
    inputs, x = _inputs(size)
    for i, filters in enumerate((32, 64, 128), start=1):
        x = _conv_bn_relu(x, filters, f"block{i}")
        x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(132, activation="relu", name="fc")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="seed_002")


def build_seed_001(num_classes: int, size: int = 48) -> keras.Model:
    """Chmura & Krukar approach 2: conv64x2-pool-drop, conv128x2, conv256x2-pool-drop, dense 1024."""
    inputs, x = _inputs(size)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="c1a")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="c1b")(x)
    x = layers.MaxPooling2D(2, name="p1")(x)
    x = layers.Dropout(0.25, name="d1")(x)
    x = layers.Conv2D(128, 3, padding="same", activation="relu", name="c2a")(x)
    x = layers.Conv2D(128, 3, padding="same", activation="relu", name="c2b")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu", name="c3a")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu", name="c3b")(x)
    x = layers.MaxPooling2D(2, name="p2")(x)
    x = layers.Dropout(0.25, name="d2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(1024, activation="relu", name="fc")(x)
    x = layers.Dropout(0.5, name="d3")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="seed_001")


def build_seed_001_vgg16(
    num_classes: int, size: int = 48, backbone_weights: str | None = None
) -> keras.Model:
    """Chmura & Krukar approach 1: a frozen VGG16 feature extractor and a 1024-128-512 head.

    ImageNet weights cannot be downloaded on every machine: pass ``backbone_weights`` (a
    ``*_notop.h5`` file) to use them; without it the backbone trains from scratch.
    """
    inputs, x = _inputs(size)
    rgb = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    backbone = keras.applications.VGG16(include_top=False, weights=None, input_shape=(size, size, 3))
    if backbone_weights:
        if not Path(backbone_weights).exists():
            raise MissingInputError(f"--backbone-weights {backbone_weights}: no such file")
        backbone.load_weights(backbone_weights)
        backbone.trainable = False
    x = layers.Flatten(name="flatten")(backbone(rgb * 255.0))
    for units in (1024, 128, 512):
        x = layers.Dense(units, activation="relu", name=f"fc{units}")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="seed_001_vgg16")


def _build_seed_004(num_classes: int, size: int, dropout: bool, name: str) -> keras.Model:
    inputs, x = _inputs(size)
    x = layers.Conv2D(32, 3, activation="relu", name="c1")(x)
    x = layers.MaxPooling2D(2, name="p1")(x)
    if dropout:
        x = layers.Dropout(0.25, name="d1")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="c2")(x)
    x = layers.MaxPooling2D(2, name="p2")(x)
    if dropout:
        x = layers.Dropout(0.25, name="d2")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="c3")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(64, activation="relu", name="fc")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name=name)


def build_seed_004_m1(num_classes: int, size: int = 48) -> keras.Model:
    """Katkar model 1: conv32-pool-conv64-pool-conv64, dense 64."""
    return _build_seed_004(num_classes, size, dropout=False, name="seed_004_m1")


def build_seed_004_m2(num_classes: int, size: int = 48) -> keras.Model:
    """Katkar model 2: model 1 with dropout after each pool."""
    return _build_seed_004(num_classes, size, dropout=True, name="seed_004_m2")


def _separable_bn_relu(x: Any, filters: int, name: str) -> Any:
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sep")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _residual_stage(x: Any, filters: int, name: str) -> Any:
    """Two separable convs with a 1x1 projection shortcut, then 2x2 max-pool."""
    shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_proj")(x)
    shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = _separable_bn_relu(x, filters, f"{name}_a")
    y = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_b_sep")(y)
    y = layers.BatchNormalization(name=f"{name}_b_bn")(y)
    y = layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([y, shortcut]))
    return layers.MaxPooling2D(2, name=f"{name}_pool")(y)


def build_edge(num_classes: int, size: int = 48, width: int = 32) -> keras.Model:
    """fer-edge's camera-box model: full convs where channels are few, separable where many.

    Full 3x3 convs at 48x48 keep the fine detail of small faces; residual separable stages at
    24, 12 and 6 pixels add depth and width cheaply (about 35M MACs, 0.2M parameters at
    ``width=32``). Only int8-friendly ops: Conv, DepthwiseConv, ReLU, max-pool, add, mean, dense.
    """
    inputs, x = _inputs(size)
    x = _conv_bn_relu(x, width // 2, "stem1")
    x = _conv_bn_relu(x, width, "stem2")
    x = layers.MaxPooling2D(2, name="stem_pool")(x)
    x = _conv_bn_relu(x, width * 2, "stage1_conv")
    x = _residual_stage(x, width * 2, "stage1")
    x = _residual_stage(x, width * 4, "stage2")
    x = _residual_stage(x, width * 8, "stage3")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="edge")


def build_vgg_teacher(num_classes: int, size: int = 48) -> keras.Model:
    """A teacher, not a camera-box model: VGG-style blocks 64x2, 128x2, 256x3, 512x3 (BN, ReLU,
    max-pool, growing dropout), global average pool, dense 512. About 7.9M parameters and 0.6
    GMACs: 70% on PublicTest after 150 epochs on a GPU (``fer-edge teach``), far past ``edge``."""
    inputs, x = _inputs(size)
    for stage, (filters, convs) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3)), start=1):
        for i in range(1, convs + 1):
            x = _conv_bn_relu(x, filters, f"block{stage}_{i}")
        x = layers.MaxPooling2D(2, name=f"block{stage}_pool")(x)
        x = layers.Dropout(0.1 * stage, name=f"block{stage}_drop")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(512, activation="relu", name="fc")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="vgg_teacher")


TEACHER_ARCH = "vgg-teacher"

ARCHS: dict[str, Arch] = {
    a.name: a
    for a in (
        # 3 conv blocks + dense 132 (Tiahunova et al.)
        Arch(
            "seed-002",
            build_seed_002,
            Recipe(optimizer="adam", learning_rate=1e-3, batch_size=64, epochs=20, patience=0),
        ),
        # VGG-like conv64x2/128x2/256x2 + dense 1024 (Chmura & Krukar, approach 2)
        Arch(
            "seed-001",
            build_seed_001,
            Recipe(optimizer="adamax", learning_rate=1e-3, batch_size=64, epochs=100, patience=20),
        ),
        # frozen VGG16 + dense 1024-128-512 (Chmura & Krukar, approach 1)
        Arch(
            "seed-001-vgg16",
            build_seed_001_vgg16,
            Recipe(optimizer="adam", learning_rate=1e-4, batch_size=64, epochs=50, patience=10),
        ),
        # conv32-pool-conv64-pool-conv64 + dense 64 (Katkar, model 1)
        Arch(
            "seed-004-m1",
            build_seed_004_m1,
            Recipe(optimizer="adam", learning_rate=1e-3, batch_size=64, epochs=30, patience=0),
        ),
        # model 1 with dropout after each pool (Katkar, model 2)
        Arch(
            "seed-004-m2",
            build_seed_004_m2,
            Recipe(optimizer="adam", learning_rate=1e-3, batch_size=64, epochs=30, patience=0),
        ),
        # fer-edge camera-box CNN: conv stem + residual separable stages
        Arch(
            "edge",
            build_edge,
            Recipe(
                optimizer="sgd",
                learning_rate=0.05,
                batch_size=64,
                epochs=60,
                schedule="cosine",
                patience=0,
                label_smoothing=0.1,
                augment="strong",
                weight_decay=5e-4,
            ),
        ),
        # VGG-style teacher for distillation (0.6 GMACs; train it on a GPU with fer-edge teach)
        Arch(
            TEACHER_ARCH,
            build_vgg_teacher,
            Recipe(
                optimizer="sgd",
                learning_rate=0.05,
                batch_size=128,
                epochs=150,
                schedule="cosine",
                patience=0,
                augment="strong",
                weight_decay=5e-4,
                eye_band_rate=0.3,
            ),
        ),
    )
}


def get_arch(name: str) -> Arch:
    """Look an architecture up by name; a usage error lists the known names."""
    try:
        return ARCHS[name]
    except KeyError:
        raise UsageError(f"--arch {name}: unknown architecture; expected one of {', '.join(ARCHS)}") from None


def build_model(name: str, num_classes: int, size: int = 48, **options: Any) -> keras.Model:
    """Build architecture ``name`` for ``num_classes`` outputs at ``size`` x ``size`` input."""
    arch = get_arch(name)
    if name == "seed-001-vgg16":
        return arch.build(num_classes, size, backbone_weights=options.get("backbone_weights"))
    return arch.build(num_classes, size)


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass (convolutions and dense layers)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_macs(layer)
            continue
        if not hasattr(layer, "kernel_size") and not isinstance(layer, layers.Dense):
            continue
        out_shape = layer.output.shape
        in_channels = int(layer.input.shape[-1])
        if isinstance(layer, layers.Dense):
            total += in_channels * int(out_shape[-1])
            continue
        spatial = int(out_shape[1]) * int(out_shape[2])
        kh, kw = layer.kernel_size
        if isinstance(layer, layers.SeparableConv2D):
            total += spatial * (kh * kw * in_channels + in_channels * int(out_shape[-1]))
        elif isinstance(layer, layers.DepthwiseConv2D):
            total += spatial * kh * kw * in_channels
        else:
            total += spatial * kh * kw * in_channels * int(out_shape[-1])
    return total
