"""THE one place that maps work over processes: in this process, on local worker processes,
or on an existing dask.distributed cluster (``--scheduler ADDRESS``).

:func:`parallel_map` yields ``fn(task)`` (or ``fn(task, shared)``) for every task. The
sweep maps grid points with it; attribution and dataset validation map batches of
samples and gather them in order, so a cluster run adds up to the same numbers as a
local one. ``shared``: what every task needs (emulators, the float reference): sent
once (scattered to every dask worker), not with each task. ``fn`` must be a
module-level function and the tasks picklable.

:func:`in_background` runs one call on a thread of its own while the caller goes on (the
float reference beside the emulator's runs), its result or exception in a Future.

dask is an optional extra (``[sweep]``), imported only when a scheduler is given; when
it is missing or the scheduler cannot be reached, :class:`ParallelError` (a
:class:`~emu.errors.UserError`: one line, exit 2) says so.
"""
from __future__ import annotations

import contextlib
import functools
import multiprocessing as mp
import signal
import threading
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Any, Callable, Iterator, Optional, Sequence

from emu.errors import UserError
from emu.signals import handled

#: the name of every :func:`in_background` thread starts so (the CLI exits at once while one still runs)
BACKGROUND_PREFIX = "s2emu-background-"
INSTALL = 'pip install "spinnaker2-emu[sweep]" (or pip install "dask[distributed]")'
#: the longest a command waits for a ``--scheduler`` to answer: a running scheduler answers in
#: milliseconds, and dask's own default (30 s) left a mistyped address silent for half a minute
CONNECT_TIMEOUT_S = 2.0


class ParallelError(UserError):
    """``--scheduler`` without dask.distributed installed, or a scheduler that cannot be reached."""


def parallel_map(fn: Callable, tasks: Sequence[Any], *, shared: Any = None, workers: int = 0,
                 scheduler: Optional[str] = None, ordered: bool = True,
                 on_error: Optional[Callable[[Any, str], Any]] = None) -> Iterator[Any]:
    """Yield ``fn(task)`` (``fn(task, shared)`` when ``shared`` is given) for every task.

    ``scheduler``: a dask.distributed scheduler address (e.g. ``tcp://host:8786``): the
    tasks run on that cluster. Else ``workers`` local processes (spawned), or this
    process when 0. ``ordered``: results in the order of ``tasks`` (else as they
    finish). ``on_error(task, message)``: what to yield for a task whose worker or
    cluster task failed; without it (and always in this process) the task's exception
    is raised here, with its own type (a :class:`~emu.errors.UserError` stays one).
    """
    tasks = list(tasks)
    if scheduler:
        return _dask_map(fn, tasks, shared, scheduler, ordered, on_error)
    if workers <= 0 or not tasks:
        return (fn(*_args(t, shared)) for t in tasks)
    return _local_map(fn, tasks, shared, workers, ordered, on_error)


def _args(task, shared) -> tuple:
    return (task,) if shared is None else (task, shared)


def _local_map(fn, tasks, shared, workers: int, ordered: bool, on_error) -> Iterator[Any]:
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_quiet_worker)
    try:
        with _children_ignore_ctrl_c():  # the workers are started by the first submit
            futures = [pool.submit(fn, *_args(t, shared)) for t in tasks]
        task_of = {f: t for f, t in zip(futures, tasks)}
        for f in (futures if ordered else as_completed(futures)):
            yield _result(f, task_of[f], on_error, "worker failed")
    except BaseException:  # Ctrl-C, an error, or the caller stopped early: stop the workers now
        _stop(pool)
        raise
    pool.shutdown(wait=True)


def _quiet_worker() -> None:
    """A worker leaves Ctrl-C to its parent (which stops it): no traceback of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _children_ignore_ctrl_c() -> Iterator[None]:
    """Processes started here inherit an ignored SIGINT (a Python child keeps an inherited SIG_IGN),
    so a Ctrl-C while they import prints nothing there; the parent's handler is back after."""
    with handled(signal.SIG_IGN):
        yield


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the running workers (their tasks are lost, on purpose)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        if p.is_alive():
            p.terminate()
    for p in processes:
        p.join(timeout=5)


def _dask_map(fn, tasks, shared, address: str, ordered: bool, on_error) -> Iterator[Any]:
    try:
        from dask.distributed import as_completed as dask_completed
    except ImportError:
        raise ParallelError(f"--scheduler needs dask.distributed: {INSTALL}") from None
    with connect(address) as client:
        if shared is not None:  # sent to every worker once (a list scatters its items: here one)
            box = client.scatter([Pickled(shared)], broadcast=True, hash=False)
            fn, extra = functools.partial(_unbox, fn), [box * len(tasks)]
        else:
            extra = []
        futures = client.map(fn, tasks, *extra, pure=False) if tasks else []
        task_of = {f.key: t for f, t in zip(futures, tasks)}
        for f in (futures if ordered else dask_completed(futures)):
            yield _result(f, task_of[f.key], on_error, "dask task failed")


class Pickled:
    """An object that dask sends pickled, whole: its own serializers would take apart what is
    inside (a torch module's state without the module that rebuilds it, as a
    :class:`~validate.float_reference.FloatReference` pickles)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __reduce__(self):
        return (Pickled, (self.value,))


def _unbox(fn, task, box: Pickled):
    return fn(task, box.value)


def connect(address: str):
    """A dask.distributed ``Client`` of the scheduler at ``address``, or a one-line
    :class:`ParallelError` after at most :data:`CONNECT_TIMEOUT_S` (less where dask's
    ``distributed.comm.timeouts.connect`` says less)."""
    try:
        import dask
        from dask.distributed import Client
        from dask.utils import parse_timedelta
    except ImportError:
        raise ParallelError(f"--scheduler needs dask.distributed: {INSTALL}") from None
    timeout = min(CONNECT_TIMEOUT_S, parse_timedelta(dask.config.get("distributed.comm.timeouts.connect")))
    try:
        return Client(address, timeout=timeout)
    except Exception as exc:  # noqa: BLE001  (whatever answers there may not speak dask: any failure says so)
        why = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise ParallelError(f"--scheduler {address}: cannot reach a dask scheduler there ({why}); start one with "
                            f"`dask scheduler` (and workers with `dask worker ADDRESS`; both come with the [sweep] "
                            f"extra: {INSTALL}) or leave --scheduler out") from None


def check_scheduler(address: Optional[str]) -> None:
    """Before any work: with a scheduler address, that dask.distributed is installed and the
    scheduler answers (one-line :class:`ParallelError` otherwise); without one, nothing."""
    if address:
        connect(address).close()


def _result(future, task, on_error, what: str):
    if on_error is None:
        return future.result()
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001  (a worker died or its task failed: the caller records it)
        return on_error(task, f"{what}: {type(exc).__name__}: {exc}")


def in_background(fn: Callable[..., Any], *args, **kwargs) -> Future:
    """``fn(*args, **kwargs)`` on a daemon thread, started now; the Future holds its result or
    exception. The work must release the GIL to overlap the caller's (torch's ops and the
    compiled kernels do). An interrupted command does not wait for it: a daemon thread ends
    with the process."""
    done: Future = Future()

    def work() -> None:
        if not done.set_running_or_notify_cancel():
            return
        try:
            done.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to whoever waits on the Future
            done.set_exception(exc)

    threading.Thread(target=work, name=BACKGROUND_PREFIX + getattr(fn, "__name__", "work"), daemon=True).start()
    return done
