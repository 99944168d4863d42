"""Pure CPU work of a bulk path done in other processes while this one writes: every core, not one."""

import contextlib
import gc
import multiprocessing
import os
import pickle
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_task: Callable | None = None
_forking = threading.Lock()


def _run(item) -> bytes:
    # Pickled here so that the caller's own thread unpickles it, not the pool's result thread: memory a thread
    # allocates stays in that thread's malloc arena, and an import's resident memory crept up with every batch.
    return pickle.dumps(_task(item), protocol=pickle.HIGHEST_PROTOCOL)


def in_other_processes(items: Iterable[T], task: Callable[[T], R], *, processes: int | None = None) -> Iterator[R]:
    """`task(item)` for every item, in order, computed in forked processes a few items in advance: by default one
    per core, at most four (beyond that the caller's own writing is the limit). The children run without the
    cyclic garbage collector (see `collector_paused`).

    `task` reaches the child through the fork, so it may be a closure over anything (never pickled); items and
    results cross by pickle. The task must not touch the database: the child inherits the parent's connection,
    and leaves it alone because multiprocessing ends children with os._exit. Without fork, runs in this process.
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        yield from map(task, items)
        return
    global _task
    processes = processes or min(4, os.cpu_count() or 1)
    ahead = 2 * processes
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(processes, mp_context=context, initializer=gc.disable) as pool:
        pending: deque = deque()
        for index, item in enumerate(items):
            if index == 0:
                # Children are forked at the first submit; they must see this call's task, not another thread's.
                with _forking:
                    _task = task
                    pending.append(pool.submit(_run, item))
            else:
                pending.append(pool.submit(_run, item))
            if len(pending) > ahead:
                yield pickle.loads(pending.popleft().result())
        while pending:
            yield pickle.loads(pending.popleft().result())


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Bulk paths make millions of short-lived containers and no cycles: the cyclic garbage collector would walk
    the whole heap again and again (a third of the time spent unpickling a batch). Reference counting still
    frees everything."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
