"""Hubs of models and datasets: the Hugging Face Hub, a compatible server, or a local folder.

- :mod:`fennec.hub.records`: what a hub answers (:class:`ModelRecord`, :class:`ModelFiles`,
  :class:`Preprocessing`) and the model-config check;
- :mod:`fennec.hub.protocol`: the interface every hub implements (:class:`Hub`);
- :mod:`fennec.hub.client`: :class:`HfHub`, the HTTP client (the only fennec module that
  imports huggingface_hub), and :func:`open_hub`;
- :mod:`fennec.hub.local`: :class:`LocalHub`, a folder of Hub-style repositories;
- :mod:`fennec.hub.repo_store`: how such a folder is read (shared by the local hub and the server);
- :mod:`fennec.hub.untrusted`: bounded, checked reading of everything a hub sends;
- :mod:`fennec.hub.server`: a local Hub-compatible HTTP server (``python -m fennec.hub.server``).
"""

from fennec._deprecated import forwarded
from fennec.hub.client import HfHub, RetryPolicy, open_hub
from fennec.hub.local import LocalHub
from fennec.hub.protocol import Hub
from fennec.hub.records import ModelFiles, ModelRecord, Preprocessing, check_config

__all__ = [
    "Hub",
    "HfHub",
    "LocalHub",
    "ModelFiles",
    "ModelRecord",
    "Preprocessing",
    "RetryPolicy",
    "check_config",
    "open_hub",
]

# What the flat module fennec.hub held beyond the names above, for one release (fennec._deprecated).
__getattr__ = forwarded("fennec.hub", (
    "fennec.hub.untrusted",
    "fennec.hub.records",
    "fennec.hub.protocol",
    "fennec.hub.client",
), renamed={
    "_check_list_args": "check_list_args",
    "_merge": "merge",
    "_read_config": "read_config",
})
