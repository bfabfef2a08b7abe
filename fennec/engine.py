"""Where fennec's independent units of work run: in this process, or on a Ray cluster.

The heavy steps of fennec are many independent units — a model's archi2vec embedding
(``fennec reindex``), a known task's descriptor (``fennec fit``), a candidate's features and
score (the refinement of :func:`fennec.recommend`), a fine-tuning job
(``scripts/build_ground_truth.py``). Each step describes its units as :class:`Unit` values (a
module-level function, its arguments, the :class:`Resources` it needs) and hands them to an
:class:`Executor`, which returns one :class:`Result` per unit:

- :class:`LocalExecutor` runs them one after the other in this process: what fennec always
  did, and what it does unless told otherwise;
- :class:`RayExecutor` runs them as Ray tasks: on a local Ray instance it starts (with the
  CPUs it is given), or on a running cluster (``ray.init(address=...)``). Ray places each
  task where its declared CPUs, memory and GPUs are free.

Either way the results come back to the caller, which commits them exactly as before (the
catalog's transactions, atomic files): a worker that dies loses only its unit, reported as a
:class:`Result` with ``lost=True`` (Ray first retries it ``Unit.retries`` times), and a
driver that is killed resumes as it always did.

:func:`open_executor` picks the executor from ``--ray [ADDRESS]`` or ``FENNEC_RAY_ADDRESS``.
Ray is imported only by :class:`RayExecutor`: without either setting fennec never imports it,
and ``ray`` is an optional extra (``pip install "fennec[ray]"``).

Example:
    >>> def square(x: int) -> int:
    ...     return x * x
    >>> with LocalExecutor() as ex:
    ...     [r.get() for r in ex.map([Unit(k, square, (k,)) for k in range(4)])]
    [0, 1, 4, 9]
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from typing import Any

from fennec import constants
from fennec.constants import RAY_ADDRESS_ENV
from fennec.errors import EngineError, InvalidInputError, RayClusterUnreachableError, RayNotInstalledError

__all__ = ["RAY_ADDRESS_ENV", "LOCAL", "EngineError", "Executor", "HubRecipe", "LocalExecutor",
           "RayClusterUnreachableError", "RayExecutor", "RayNotInstalledError", "Resources", "Result", "Unit",
           "hub_for_workers", "hub_on_worker", "lost_error", "open_executor", "ray_address"]

LOG = logging.getLogger(__name__)

#: The address that means "start a Ray instance on this machine" (also ``--ray`` alone).
LOCAL = "local"
#: Seconds :class:`RayExecutor` waits for a TCP connection to a cluster's address before it
#: says the cluster is unreachable (``ray.init`` itself would wait minutes, then exit).
CONNECT_TIMEOUT_S = 5.0
#: The default port of a Ray head node's GCS (``ray start --head``), and of Ray Client.
DEFAULT_GCS_PORT, DEFAULT_CLIENT_PORT = 6379, 10001

_INSTALL_HINT = 'pip install "fennec[ray]"'
#: How Ray reports a remote function a worker cannot unpickle (a module missing there).
_IMPORT_FAILED = "The remote function failed to import on the worker"


@dataclasses.dataclass(frozen=True)
class Resources:
    """What one unit needs, for Ray's scheduler (a :class:`LocalExecutor` ignores it).

    Attributes:
        num_cpus: CPU cores (Ray also sets the task's ``OMP_NUM_THREADS`` to it).
        memory: bytes of memory reserved for the task on its node, or None for no reservation.
            Ray uses it to place tasks, it does not enforce it: fennec's own budgets still
            hold (e.g. archi2vec's sandbox).
        num_gpus: GPUs (a fraction shares one); 0 runs the unit without a GPU.
    """

    num_cpus: float = 1.0
    memory: int | None = None
    num_gpus: float = 0.0

    def __post_init__(self) -> None:
        for name in ("num_cpus", "num_gpus"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e6:
                raise InvalidInputError(f"Resources.{name} must be a number >= 0, got {value!r}.")
        if self.memory is not None and (isinstance(self.memory, bool) or not isinstance(self.memory, int)
                                        or self.memory <= 0):
            raise InvalidInputError(f"Resources.memory must be a positive number of bytes or None, "
                                    f"got {self.memory!r}.")

    def ray_options(self) -> dict[str, Any]:
        """These resources as ``ray.remote(...).options(**...)`` keywords."""
        options: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}
        if self.memory is not None:
            options["memory"] = self.memory
        return options


@dataclasses.dataclass(frozen=True)
class Unit:
    """One independent piece of work.

    Attributes:
        key: names the unit in its :class:`Result` (e.g. a model id); unique within one map.
        func: a module-level function (a Ray worker imports it by name; a lambda or a local
            function would be shipped by value instead, which works but hides what runs).
        args, kwargs: its arguments. On Ray they are serialised to the worker: pass plain
            data, or :meth:`Executor.share` for a large value several units read.
        resources: what it needs (:class:`Resources`).
        retries: how many times Ray runs it again when its worker or node dies (not when the
            function raises: that is the unit's result).
    """

    key: Hashable
    func: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    resources: Resources = Resources()
    retries: int = 1


@dataclasses.dataclass(frozen=True)
class Result:
    """What became of one :class:`Unit`.

    Attributes:
        key: the unit's key.
        value: what its function returned (None when it failed).
        error: the exception it raised, or why it was lost; None on success.
        lost: the unit did not finish because its worker or node died (after Ray's
            retries), not because its function raised.
        seconds: wall time from submission to result.
    """

    key: Hashable
    value: Any = None
    error: BaseException | None = None
    lost: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def get(self) -> Any:
        """The value, or the unit's error raised here."""
        if self.error is not None:
            raise self.error
        return self.value


class Executor:
    """Runs :class:`Unit` values and yields their :class:`Result` (the two implementations
    below). Use it as a context manager: :meth:`close` releases what it started."""

    #: ``local`` or ``ray``.
    kind: str = "local"

    def map(self, units: Iterable[Unit], *, in_flight: int | None = None) -> Iterator[Result]:
        """Run every unit; yield one result per unit as each finishes (any order).

        ``units`` is read lazily: at most ``in_flight`` units (default: the executor's) are
        submitted and not yet yielded, so a generator can stop handing out units (a
        deadline) and a long list does not all wait in the cluster's queue. An ``Exception``
        raised by a unit's function is its result's ``error``; a ``KeyboardInterrupt``
        stops the map (units still running on Ray are cancelled).
        """
        raise NotImplementedError

    def run(self, units: Iterable[Unit]) -> dict[Hashable, Result]:
        """:meth:`map`, collected by key, in the units' order."""
        units = list(units)
        _check_keys(units)
        done = {r.key: r for r in self.map(units)}
        return {u.key: done[u.key] for u in units}

    def share(self, value: Any) -> Any:
        """A handle on ``value`` to pass as an argument to many units: stored once in Ray's
        object store (the units receive the value itself); the value as is, locally."""
        return value

    def gpus_per_unit(self, device: Any = None) -> float:
        """The GPUs a unit that runs models on ``device`` should ask for: 1 when the
        executor has GPUs and ``device`` is not the CPU, else 0 (a unit asking for a GPU
        that no node has would never be scheduled)."""
        return 0.0

    @property
    def workers(self) -> int:
        """How many units can run at once (CPU cores of the cluster for Ray)."""
        return 1

    def describe(self) -> str:
        """One line for logs: which executor, where, how many CPUs and GPUs."""
        return "local (in this process)"

    def close(self) -> None:
        """Release what the executor started (a local Ray instance is shut down)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_keys(units: list[Unit]) -> None:
    seen: set[Hashable] = set()
    for unit in units:
        if not isinstance(unit, Unit):
            raise InvalidInputError(f"An executor runs Unit values, got {type(unit).__name__}.")
        if unit.key in seen:
            raise InvalidInputError(f"Two units share the key {unit.key!r}; each unit needs its own key.")
        seen.add(unit.key)


class LocalExecutor(Executor):
    """Runs units in this process, one after the other, in order (fennec's default)."""

    kind = "local"

    def map(self, units: Iterable[Unit], *, in_flight: int | None = None) -> Iterator[Result]:
        for unit in units:
            if not isinstance(unit, Unit):
                raise InvalidInputError(f"An executor runs Unit values, got {type(unit).__name__}.")
            t0 = time.perf_counter()
            try:
                value = unit.func(*unit.args, **unit.kwargs)
            except Exception as e:  # noqa: BLE001 - the unit's failure is its result; the caller decides
                yield Result(unit.key, error=e, seconds=time.perf_counter() - t0)
            else:
                yield Result(unit.key, value=value, seconds=time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------
# Ray
# ---------------------------------------------------------------------------------------


def _import_ray(address: str) -> Any:
    """The ``ray`` module, or a :class:`RayNotInstalledError` that says how to install it."""
    try:
        import ray
    except ImportError as e:
        raise RayNotInstalledError(
            f"Ray was requested (address {address!r}, from --ray or {RAY_ADDRESS_ENV}) but is not installed "
            f"in this Python ({e}). Install it with `{_INSTALL_HINT}`, or run without --ray and without "
            f"{RAY_ADDRESS_ENV} to work in this process.") from e
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a cluster address to probe, or None for one Ray resolves itself
    (``auto``: the cluster started on this machine with ``ray start``)."""
    text = address.strip()
    if text == "auto":
        return None
    client = text.startswith("ray://")
    rest = text[len("ray://"):] if client else text
    if "://" in rest or not rest or any(c.isspace() for c in rest) or "/" in rest:
        raise InvalidInputError(
            f"Cannot read the Ray address {address!r}: expected HOST:PORT of the head node (port "
            f"{DEFAULT_GCS_PORT} by default), ray://HOST:PORT for Ray Client (port {DEFAULT_CLIENT_PORT}), "
            f"'auto' for the cluster started on this machine, or '{LOCAL}' for a new local instance.")
    host, sep, port = rest.rpartition(":")
    if not sep:
        host, port = rest, str(DEFAULT_CLIENT_PORT if client else DEFAULT_GCS_PORT)
    host = host.strip("[]")  # [::1]:6379
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInputError(f"Cannot read the Ray address {address!r}: the port must be a number "
                                f"in 1..65535 and a host must come before it (e.g. 10.0.0.5:{DEFAULT_GCS_PORT}).")
    return host, int(port)


def _unreachable(address: str, why: str) -> RayClusterUnreachableError:
    client = address.startswith("ray://")
    return RayClusterUnreachableError(
        f"Cannot reach the Ray cluster at {address!r} ({why}). Check that the cluster is running "
        f"(`ray status` on its head node), that the address is its head node's "
        + ("Ray Client server (ray://HOST:10001, started by `ray start --head`)" if client
           else f"GCS address (HOST:{DEFAULT_GCS_PORT} unless `ray start --head --port` said otherwise; "
                "ray://HOST:10001 for Ray Client)")
        + ", that this machine can reach it (firewall, VPN, security group), and that this Python's ray "
          f"version matches the cluster's. Or drop --ray / {RAY_ADDRESS_ENV} to work in this process.",
        address=address)


def _probe(address: str, timeout: float) -> None:
    """Fail fast, with the address, when nothing answers at it."""
    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout):
            pass
    except OSError as e:
        why = "timed out" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise _unreachable(address, f"{target[0]}:{target[1]}: {why}") from e


def _call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """What a Ray task runs: ``func`` (shipped by reference, any callable) on its arguments
    (passed at the top level, so that Ray hands the task the values of shared object refs)."""
    return func(*args, **kwargs)


def _missing_module(error: BaseException) -> str | None:
    """The import error of a task whose function (or an argument) a worker could not load,
    as Ray reports it, or None for any other error."""
    for candidate in (error, *(a for a in error.args[:1] if isinstance(a, BaseException))):
        if isinstance(candidate, ModuleNotFoundError):
            return str(candidate)
    if _IMPORT_FAILED in str(error):
        return str(error).rstrip().splitlines()[-1]
    return None


def _lost_errors(ray: Any) -> tuple[type[BaseException], ...]:
    """Ray's exceptions that mean a unit's worker or node went away (not the unit's fault)."""
    names = ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError", "ObjectLostError",
             "OwnerDiedError", "TaskCancelledError", "LocalRayletDiedError", "RaySystemError",
             "ActorDiedError", "TaskUnschedulableError")
    return tuple(getattr(ray.exceptions, n) for n in names if hasattr(ray.exceptions, n))


class RayExecutor(Executor):
    """Runs units as Ray tasks, on a local instance it starts or on a running cluster.

    Args:
        address: ``None`` or ``"local"``: start a Ray instance on this machine (shut down
            by :meth:`close`); ``"auto"``: the cluster started on this machine with ``ray
            start``; ``HOST:PORT``: a cluster's head node; ``ray://HOST:PORT``: a cluster
            through Ray Client.
        num_cpus, num_gpus: of the local instance (default: what Ray detects); refused with
            a cluster address (the cluster has its own).
        max_in_flight: the most tasks submitted and not yet collected (default: twice the
            cluster's CPUs, at least 4), so a long list of units does not fill the object
            store at once.
        connect_timeout: seconds to wait for a cluster's address to answer.
        init_kwargs: more keywords for ``ray.init`` (e.g. ``runtime_env``).

    When this process is connected to Ray already (its own ``ray.init``), a local address
    uses that connection as it is and :meth:`close` leaves it open; a cluster address is
    refused (:class:`EngineError`).

    Raises:
        RayNotInstalledError: ``ray`` cannot be imported.
        RayClusterUnreachableError: nothing answers at ``address``, or ``ray.init`` could
            not join the cluster there.
        InvalidInputError: an address that cannot be read, or local settings with a cluster.
    """

    kind = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None, num_gpus: int | None = None,
                 max_in_flight: int | None = None, connect_timeout: float = CONNECT_TIMEOUT_S,
                 **init_kwargs: Any):
        address = (address or "").strip() or None
        local = address in (None, LOCAL)
        if not local and (num_cpus is not None or num_gpus is not None):
            raise InvalidInputError(f"num_cpus and num_gpus set up a local Ray instance; the cluster at "
                                    f"{address!r} has its own resources. Drop them, or use address={LOCAL!r}.")
        if max_in_flight is not None and max_in_flight < 1:
            raise InvalidInputError(f"max_in_flight must be >= 1, got {max_in_flight}.")
        self.address = LOCAL if local else str(address)
        ray = self._ray = _import_ray(self.address)
        self._max_in_flight_asked = max_in_flight
        if not local:
            _probe(self.address, connect_timeout)
        # connected already (a notebook's ray.init, another executor): use that connection, leave it open
        self._owned = not ray.is_initialized()
        if not self._owned:
            if not local:
                raise EngineError(
                    f"This process is connected to Ray already ({ray.get_runtime_context().gcs_address}) and "
                    f"cannot join {self.address!r} too: use that connection (--ray without an address), or "
                    "call ray.shutdown() first.")
            LOG.info("Ray is already initialised in this process: using its connection as it is")
            self.startup_seconds = 0.0
            self._setup()
            return
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "configure_logging": False, **init_kwargs}
        t0 = time.perf_counter()
        try:
            if local:
                ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, **options)
            else:
                ray.init(address=self.address, **options)
        except (ConnectionError, RuntimeError, TimeoutError) as e:
            if local:
                raise EngineError(f"Could not start a local Ray instance: {e}") from e
            raise _unreachable(self.address, f"{type(e).__name__}: {e}") from e
        self.startup_seconds = time.perf_counter() - t0
        self._setup()
        LOG.info("Ray: %s (started in %.1f s)", self.describe(), self.startup_seconds)

    def _setup(self) -> None:
        resources = self._ray.cluster_resources()
        self._cpus = max(1, int(resources.get("CPU", 1)))
        self._gpus = float(resources.get("GPU", 0.0))
        self._max_in_flight = self._max_in_flight_asked or max(4, 2 * self._cpus)
        self._call = self._ray.remote(_call)

    @property
    def workers(self) -> int:
        return self._cpus

    def describe(self) -> str:
        where = ("this process's Ray connection" if not self._owned else
                 "a local Ray instance" if self.address == LOCAL else
                 f"the Ray cluster at {self.address}")
        gpus = f", {self._gpus:g} GPUs" if self._gpus else ""
        return f"ray: {where} ({self._cpus} CPUs{gpus})"

    def gpus_per_unit(self, device: Any = None) -> float:
        if self._gpus <= 0 or (device is not None and str(device).split(":")[0] == "cpu"):
            return 0.0
        return 1.0

    def share(self, value: Any) -> Any:
        return self._ray.put(value)

    def map(self, units: Iterable[Unit], *, in_flight: int | None = None) -> Iterator[Result]:
        if in_flight is not None and in_flight < 1:
            raise InvalidInputError(f"in_flight must be >= 1, got {in_flight}.")
        limit = in_flight or self._max_in_flight
        ray = self._ray
        lost_types = _lost_errors(ray)
        queue = iter(units)
        pending: dict[Any, tuple[Unit, float]] = {}
        seen: set[Hashable] = set()
        try:
            while True:
                for unit in queue:  # submit up to the limit
                    if not isinstance(unit, Unit):
                        raise InvalidInputError(f"An executor runs Unit values, got {type(unit).__name__}.")
                    if unit.key in seen:
                        raise InvalidInputError(f"Two units share the key {unit.key!r}; each unit needs its own key.")
                    seen.add(unit.key)
                    ref = self._call.options(max_retries=max(0, int(unit.retries)), retry_exceptions=False,
                                             name=f"fennec:{unit.key}"[:200],
                                             **unit.resources.ray_options()).remote(
                        unit.func, *unit.args, **dict(unit.kwargs))
                    pending[ref] = (unit, time.perf_counter())
                    if len(pending) >= limit:
                        break
                if not pending:
                    return
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    unit, t0 = pending.pop(ref)
                    yield self._collect(ref, unit, t0, lost_types)
        finally:
            for ref in pending:  # a stopped map (Ctrl-C, an error, the caller left) cancels the rest
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - best effort: the task may have finished meanwhile
                    pass

    def _collect(self, ref: Any, unit: Unit, t0: float, lost_types: tuple[type[BaseException], ...]) -> Result:
        ray = self._ray
        try:
            value = ray.get(ref)
        except ray.exceptions.RayTaskError as e:  # the function raised: its own exception
            cause = getattr(e, "cause", None)
            error = cause if isinstance(cause, BaseException) else e
            missing = _missing_module(error)
            if missing is not None:  # the worker cannot even load the function
                raise EngineError(
                    f"The Ray workers of {self.describe()} cannot import "
                    f"{getattr(unit.func, '__module__', '?')}.{getattr(unit.func, '__qualname__', '?')} "
                    f"({missing}): install fennec, the same version as here, with its dependencies on every node "
                    "of the cluster (or ship it with ray.init's runtime_env).") from error
            return Result(unit.key, error=error, seconds=time.perf_counter() - t0)
        except lost_types as e:
            LOG.warning("Ray lost unit %r (%s: %s)", unit.key, type(e).__name__, str(e).splitlines()[0][:200])
            return Result(unit.key, error=e, lost=True, seconds=time.perf_counter() - t0)
        return Result(unit.key, value=value, seconds=time.perf_counter() - t0)

    def close(self) -> None:
        """Disconnect from the cluster; a local instance started here is shut down. A
        connection this executor found open is left open."""
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()


# ---------------------------------------------------------------------------------------
# What travels to a worker
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class HubRecipe:
    """How a worker opens the hub this process uses, without shipping it: a folder hub by
    its path (which the workers must see: a local Ray instance does; a cluster needs a shared
    file system), an HTTP hub by its endpoint and offline setting. The token and the
    download cache are the worker's own (``HF_TOKEN``, ``HF_HOME`` on its node; a local Ray
    instance inherits this process's environment)."""

    kind: str  # "folder" | "http"
    location: str
    offline: bool = False

    def open(self) -> Any:
        from fennec.hub import HfHub, LocalHub

        if self.kind == "folder":
            return LocalHub(self.location)
        return HfHub(endpoint=self.location, offline=self.offline)


def hub_for_workers(hub: Any) -> Any:
    """What to pass to a unit for ``hub``: a :class:`HubRecipe` for fennec's hubs, the hub
    itself for any other object (which must then pickle)."""
    from fennec.hub import HfHub, LocalHub

    if isinstance(hub, LocalHub):
        return HubRecipe("folder", str(hub.root.resolve()))
    if isinstance(hub, HfHub):
        return HubRecipe("http", hub.endpoint, hub.offline)
    return hub


_OPENED: dict[HubRecipe, Any] = {}


def hub_on_worker(hub: Any) -> Any:
    """The hub a unit was given by :func:`hub_for_workers`, opened once per worker process."""
    if not isinstance(hub, HubRecipe):
        return hub
    if hub not in _OPENED:
        _OPENED[hub] = hub.open()
    return _OPENED[hub]


def lost_error(result: Result, what: str) -> EngineError:
    """The error to raise for a unit that was lost with its worker (``what`` names it)."""
    return EngineError(f"{what} was lost with its Ray worker ({type(result.error).__name__}: "
                       f"{str(result.error).splitlines()[0][:300] if str(result.error) else 'no details'}); "
                       "nothing was written. Run the command again.")


# ---------------------------------------------------------------------------------------
# Choosing
# ---------------------------------------------------------------------------------------


def ray_address(value: str | None = None) -> str | None:
    """The Ray address asked for: ``value`` (``--ray``; ``""`` or ``"local"`` for a local
    instance), else ``FENNEC_RAY_ADDRESS``; None when neither asks for Ray."""
    if value is not None:
        return value.strip() or LOCAL
    return constants.ray_address()


def open_executor(ray: str | None = None, **ray_kwargs: Any) -> Executor:
    """The executor for a command: :class:`RayExecutor` when ``ray`` (``--ray [ADDRESS]``) or
    ``FENNEC_RAY_ADDRESS`` names one, else :class:`LocalExecutor` (and Ray is not imported).

    Args:
        ray: the ``--ray`` value: an address, or ``""`` / ``"local"`` for a local instance.
        ray_kwargs: passed to :class:`RayExecutor`.

    Raises:
        RayNotInstalledError, RayClusterUnreachableError: as :class:`RayExecutor`.
    """
    address = ray_address(ray)
    if address is None:
        return LocalExecutor()
    return RayExecutor(address, **ray_kwargs)
