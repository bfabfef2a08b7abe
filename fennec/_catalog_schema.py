"""Deprecated alias of :mod:`fennec.catalog.schema` (moved by issue 13); removed in the next release."""

from fennec._deprecated import moved

__getattr__ = moved("fennec._catalog_schema", ("fennec.catalog.schema",))
