"""Run an iterator one step ahead in a background thread.

PyAV releases the GIL while it decodes, so decoding frames in one thread while the caller works on
them in another keeps both cores busy.
"""
from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """Yield the items of `items` in order, computing up to `depth` of them ahead in a thread.

    An exception raised while producing an item is raised here, at that item. Leaving the loop early
    (break, exception, garbage collection) stops the producer after at most one more item.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            buffer.put((_DONE, exc))

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = buffer.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full buffer
            try:
                buffer.get(timeout=0.1)
            except queue.Empty:
                pass
        worker.join()
