"""Reading the daemon's configuration from YAML, with secrets from the environment.

``${VAR}`` (or ``${VAR:-default}``) is replaced from the environment, else from the file ``VAR`` in
systemd's ``$CREDENTIALS_DIRECTORY``. Every error becomes one line with the key path and the YAML
line it came from, raised as :class:`ConfigError` (exit 78).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from fer_edge.daemon.config import DaemonConfig
from fer_edge.daemon.redact import mask_url, shown_value
from fer_edge.errors import ConfigError, MissingInputError

logger = logging.getLogger(__name__)

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _UnsetVariable(Exception):
    """``${VAR}`` with no value; carries the key path so the error can name the YAML line."""

    def __init__(self, name: str, loc: tuple[object, ...]) -> None:
        super().__init__(name)
        self.name, self.loc = name, loc


def _secret(name: str, default: str | None, where: tuple[object, ...]) -> str:
    if name in os.environ:
        return os.environ[name]
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir and (Path(cred_dir) / name).is_file():
        return (Path(cred_dir) / name).read_text().rstrip("\n")
    if default is not None:
        return default
    raise _UnsetVariable(name, where)


def _expand(value: Any, where: tuple[object, ...]) -> Any:
    if isinstance(value, str):
        return _VAR.sub(lambda m: _secret(m.group(1), m.group(2), where), value)
    if isinstance(value, dict):
        return {k: _expand(v, (*where, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, (*where, i)) for i, v in enumerate(value)]
    return value


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based YAML line of the value at ``loc`` (or of its nearest existing parent)."""
    if node is None:
        return None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == str(key)), None)
            if match is None:
                # an unknown key: point at the key itself
                match = next((k for k, _ in node.value if getattr(k, "value", None) == str(key)), None)
                return (match or node).start_mark.line + 1
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
    return node.start_mark.line + 1


def _describe(error: dict[str, Any], path: Path, root: yaml.Node | None) -> str:
    loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    key = ".".join(str(p) for p in loc) or "(top level)"
    line = _line_of(root, loc)
    where = f"{path}:{line}" if line else str(path)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "required key is missing"
    value = error.get("input")
    shown = (
        ""
        if error["type"] in ("missing", "extra_forbidden") or isinstance(value, dict)
        else shown_value(value, loc)
    )
    return f"{where}: {key}: {mask_url(message)}{shown}"


def _refuse_aliases(text: str, path: Path) -> None:
    """Anchors and aliases (``&a`` / ``*a``) are not needed in a config, and a few of them nested
    make a 'YAML bomb' that expands to billions of values: refuse them outright."""
    for event in yaml.parse(text):
        if isinstance(event, yaml.AliasEvent):
            line = event.start_mark.line + 1 if event.start_mark else 0
            raise ConfigError(f"{path}:{line}: YAML aliases (*name) are not supported in the config")


def _refuse_duplicate_keys(node: yaml.Node | None, path: Path) -> None:
    """YAML lets a later key silently replace an earlier one (a second camera of the same name
    drops the first); a config must say each setting once."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[object, int] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            if name is not None:
                if name in seen:
                    raise ConfigError(
                        f"{path}:{key.start_mark.line + 1}: duplicate key {name!r} "
                        f"(first at line {seen[name]})"
                    )
                seen[name] = key.start_mark.line + 1
            _refuse_duplicate_keys(value, path)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(item, path)


def load_config(path: str | os.PathLike[str]) -> DaemonConfig:
    """Read, expand and validate a daemon config; the first problem raises :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path}: config file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {e.start}); expected YAML") from None
    except OSError as e:
        raise MissingInputError(f"{path}: cannot read the config file ({e.strerror})") from None
    try:
        _refuse_aliases(text, path)
        root = yaml.compose(text)
        _refuse_duplicate_keys(root, path)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = str(getattr(e, "problem", None) or e).strip().splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    try:
        raw = _expand(raw, ())
    except _UnsetVariable as e:
        line = _line_of(root, e.loc)
        where = f"{path}:{line}" if line else str(path)
        key = ".".join(str(p) for p in e.loc)
        raise ConfigError(
            f"{where}: {key}: ${{{e.name}}} is not set (environment or $CREDENTIALS_DIRECTORY)"
        ) from None
    try:
        return DaemonConfig.model_validate(raw)
    except ValidationError as e:
        errors = e.errors()
        extra = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(_describe(errors[0], path, root) + extra) from None
