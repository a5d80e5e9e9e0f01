"""Inference off the event loop: a fixed pool of worker threads behind a bounded queue.

A request that finds every worker busy and the queue full is refused at once (503 + Retry-After)
instead of piling up in memory; the client retries later.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class OverloadedError(Exception):
    """Every worker is busy and the queue is full."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"The service is at capacity; retry in {retry_after} s")
        self.retry_after = retry_after


class WorkerPool:
    """``workers`` threads run jobs; up to ``queue_size`` more may wait; the rest get OverloadedError."""

    def __init__(self, workers: int, queue_size: int, retry_after: int) -> None:
        self.capacity = workers + queue_size
        self.retry_after = retry_after
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="facesift-serve")
        self._lock = threading.Lock()
        self._admitted = 0

    @property
    def admitted(self) -> int:
        """Jobs running or waiting now."""
        return self._admitted

    async def run(self, function: Callable[..., T], *args) -> T:
        with self._lock:
            if self._admitted >= self.capacity:
                raise OverloadedError(self.retry_after)
            self._admitted += 1
        # counted until the job itself ends, even when the client goes away and the await is cancelled
        future = self._executor.submit(function, *args)
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def _release(self, _future) -> None:
        with self._lock:
            self._admitted -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
