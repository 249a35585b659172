"""One training run's settings (``fer-edge train``'s options), checked before anything is read or
written."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fer_edge.errors import MissingInputError, UsageError
from fer_edge.training.archs import Recipe, get_arch
from fer_edge.training.data import DEFAULT_CACHE
from fer_edge.training.ferplus import LABEL_MODES
from fer_edge.training.teachers import Teaching

WIDTH_ARCH = "edge"  # the architecture whose width --width sets


@dataclass
class TrainConfig:
    """One training run; ``None`` fields take the architecture's recipe."""

    arch: str
    data: str
    out: str
    epochs: int | None = None
    time_budget: float | None = None
    batch_size: int | None = None
    optimizer: str | None = None
    learning_rate: float | None = None
    schedule: str | None = None
    warmup: int | None = None
    patience: int | None = None
    label_smoothing: float | None = None
    augment: str | None = None
    class_weights: bool | None = None
    weight_decay: float | None = None
    eye_band_rate: float | None = None
    seed: int = 1234
    resume: bool = False
    cache_dir: str | None = str(DEFAULT_CACHE)
    drop_classes: list[str] = field(default_factory=list)
    limit: int | None = None
    backbone_weights: str | None = None
    width: int | None = None
    init_from: str | None = None
    teachers: list[str] = field(default_factory=list)
    distill_weight: float = 0.5
    distill_temperature: float = 2.0
    labels: str = "fer2013"
    fer2013_votes: float = 0.0
    class_weight_power: float = 1.0
    size: int = 48

    def teaching(self) -> Teaching | None:
        """The teachers' part in the targets, when this run learns from any."""
        if not self.teachers:
            return None
        return Teaching(tuple(self.teachers), self.distill_weight, self.distill_temperature)

    def recipe(self) -> Recipe:
        """The architecture's recipe with this run's overrides applied."""
        base = asdict(get_arch(self.arch).recipe)
        for key in base:
            value = getattr(self, key, None)
            if value is not None:
                base[key] = value
        return Recipe(**base)

    def build_options(self) -> dict[str, Any]:
        """Architecture options: ``--width`` for ``edge``, backbone weights for ``seed-001-vgg16``."""
        options: dict[str, Any] = {}
        if self.width is not None:
            options["width"] = self.width
        if self.backbone_weights:
            options["backbone_weights"] = self.backbone_weights
        return options

    def check(self, recipe: Recipe) -> None:
        """Refuse settings that cannot mean anything, before any data is read or anything written."""
        if self.epochs is not None and self.time_budget is not None:
            raise UsageError("give --epochs or --time-budget, not both")
        if self.epochs is not None and self.epochs < 1:
            raise UsageError(f"--epochs {self.epochs}: expected 1 or more")
        if self.time_budget is not None and self.time_budget <= 0:
            raise UsageError(f"--time-budget {self.time_budget}: expected seconds above 0")
        if not 0.0 <= recipe.eye_band_rate <= 1.0:
            raise UsageError(f"--eye-band-rate {recipe.eye_band_rate}: expected a share between 0 and 1")
        if not 0.0 <= recipe.label_smoothing < 1.0:
            raise UsageError(f"--label-smoothing {recipe.label_smoothing}: expected a share in [0, 1)")
        if self.width is not None:
            if self.arch != WIDTH_ARCH:
                raise UsageError(f"--width sets the width of {WIDTH_ARCH}, not of {self.arch}")
            if self.width < 8 or self.width % 2:
                raise UsageError(f"--width {self.width}: expected an even number of 8 or more")
        if self.labels not in LABEL_MODES:
            raise UsageError(f"--labels {self.labels}: expected one of {', '.join(LABEL_MODES)}")
        if self.fer2013_votes < 0 or (self.fer2013_votes and self.labels != "votes"):
            raise UsageError(
                f"--fer2013-votes {self.fer2013_votes}: a count of 0 or more, with --labels votes"
            )
        if not 0.0 < self.class_weight_power <= 1.0:
            raise UsageError(f"--class-weight-power {self.class_weight_power}: expected a power in (0, 1]")
        if self.backbone_weights and self.arch != "seed-001-vgg16":
            raise UsageError("--backbone-weights is for seed-001-vgg16 only")
        teaching = self.teaching()
        if teaching is not None:
            teaching.check()
        if self.resume and not (Path(self.out) / "checkpoints" / "state.json").exists():
            raise MissingInputError(f"{self.out}/checkpoints: no checkpoint to resume from")
        if self.init_from and not self.resume and not Path(self.init_from).is_file():
            raise MissingInputError(f"{self.init_from}: no such model to start from")
