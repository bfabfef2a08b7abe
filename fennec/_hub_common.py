"""Deprecated alias of :mod:`fennec.hub.records` / :mod:`fennec.hub.protocol` (moved by issue 13);
removed in the next release."""

from fennec._deprecated import moved

__getattr__ = moved(
    "fennec._hub_common", ("fennec.hub.records", "fennec.hub.protocol"),
    renamed={
        "_check_list_args": "check_list_args",
        "_merge": "merge",
        "_sort_key": "sort_key",
        "_read_config": "read_config",
        "_SORTS": "SORTS",
    },
)
