"""Loading the vendor files that ship in `vendors/`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from signal_admin.catalog.models import Vendor

VENDOR_DIR = Path(__file__).parent / "vendors"


class CatalogError(Exception):
    """A vendor file is broken; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class Catalog:
    vendors: tuple[Vendor, ...]

    def get(self, key: str) -> Vendor | None:
        return next((vendor for vendor in self.vendors if vendor.key == key), None)


def load_catalog(folder: Path = VENDOR_DIR) -> Catalog:
    files = sorted(folder.glob("*.yaml"))
    vendors = [_load_vendor(path) for path in files]
    return Catalog(tuple(sorted(vendors, key=lambda vendor: vendor.key)))


@cache
def shipped_catalog() -> Catalog:
    """The catalog in the package, read once per process."""
    return load_catalog()


def _load_vendor(path: Path) -> Vendor:
    try:
        document = yaml.safe_load(path.read_text())
        vendor = Vendor.model_validate(document)
    except (yaml.YAMLError, ValidationError) as error:
        raise CatalogError(f"{path.name}: {error}") from error
    if vendor.key != path.stem:
        raise CatalogError(f"{path.name}: the key {vendor.key!r} must match the name")
    return vendor
