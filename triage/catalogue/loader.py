"""Reads a catalogue file (YAML) into a validated `Catalogue`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from triage.domain.catalogue import Catalogue, CatalogueError, parse_catalogue

DEFAULT_CATALOGUE = Path(__file__).with_name("kent.yaml")


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    file = Path(path) if path else DEFAULT_CATALOGUE
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise CatalogueError(str(file), [f"cannot read the file: {error.strerror}"]) from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise CatalogueError(str(file), [f"not valid YAML: {error}"]) from error
    return parse_catalogue(data, source=file.name)


@lru_cache(maxsize=8)
def cached_catalogue(path: str | None = None) -> Catalogue:
    return load_catalogue(path)
