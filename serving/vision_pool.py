"""Where readings run: worker threads of the bot's process, or worker processes.

Processes are the default (``DIGITS_VISION_PROCESSES=true``): the reader's Python-level
work does not compete with the event loop for the GIL and segmentation uses every core
(bench bot: the bot's own process spends 23 ms of CPU per photo instead of 80). They
start beside polling (``warm_up`` runs in the background); each worker loads the model
a request names (by version and hash) and keeps the last two, so a hot swap reaches the
workers with the first request that uses the new model. Threads (``false``) have nothing
to start: the tests' bots use them and come up in milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections import OrderedDict
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from serving import service
from serving.model_swap import LoadedModel, load_reader

log = logging.getLogger(__name__)

_readers: OrderedDict[str, Any] = OrderedDict()  # per worker process: key -> reader
# A tiny white PNG: reading it makes each vision worker process load the model.
WARM_UP_IMAGE = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000100000001008000000003a98a0bd0000002b4944415418"
    "1955c1b1010000008220fdff689b03e319cf78c6339ef18c673ce319cf78c6339ef18c67bc01f99810"
    "01464639550000000049454e44ae426082"
)


def limit_threads(torch_threads: int) -> None:
    """Limit PyTorch's intra-op threads (per thread with OpenMP, so in every worker) and
    OpenCV's (per process) to one: the readings already run in parallel, a core each,
    and OpenCV's second thread cost 7 % more CPU per photo (40.4 vs 37.5 ms)."""
    import cv2

    cv2.setNumThreads(1)
    if torch_threads > 0:
        import torch

        torch.set_num_threads(torch_threads)


def _read_in_process(
    file: str | None,
    key: str,
    data: bytes,
    max_pages: int,
    threads: int,
    annotated: bool = True,
) -> list[service.Page]:
    reader = _readers.get(key)
    if reader is None:
        reader = load_reader(Path(file) if file else None, threads)
        _readers[key] = reader
        while len(_readers) > 2:
            _readers.popitem(last=False)
    else:
        _readers.move_to_end(key)
    return service.read_image(reader, data, max_pages, annotated)


class VisionPool:
    """Runs ``service.read_image`` off the event loop, in threads or processes.

    With processes, photos that come while the workers start and load the model are read
    in threads of this process (with the reader it holds anyway): nobody waits for them.
    """

    def __init__(self, workers: int = 0, torch_threads: int = 1, processes: bool = False):
        self.workers = workers or os.cpu_count() or 2
        self.processes = processes
        self.torch_threads = torch_threads
        self._executor: Executor
        # Starting the processes blocks the caller for seconds (the fork server imports
        # PyTorch before it answers), so the first submit happens in a thread.
        self._started = self._ready = not processes
        self._start_lock = asyncio.Lock()
        self._warming: asyncio.Task[None] | None = None
        threads = ThreadPoolExecutor(
            max_workers=self.workers,
            thread_name_prefix="vision",
            initializer=limit_threads,
            initargs=(torch_threads,),
        )
        self._threads: ThreadPoolExecutor | None = threads
        if processes:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["serving.service", "vision.reader"])
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=context,
                initializer=limit_threads,
                initargs=(torch_threads,),
            )
        else:
            self._executor = threads

    @property
    def ready(self) -> bool:
        """True once readings go to the worker processes (always, with threads)."""
        return self._ready

    async def read(
        self, model: LoadedModel, data: bytes, max_pages: int, *, annotated: bool = True
    ) -> list[service.Page]:
        """Read ``data`` with ``model``; ``annotated=False`` skips the annotated JPEG."""
        loop = asyncio.get_running_loop()
        if not self._ready and model.reader is not None:
            self.start_warm_up(model)
            return await loop.run_in_executor(
                self._threads, service.read_image, model.reader, data, max_pages, annotated
            )
        if not self.processes:
            return await loop.run_in_executor(
                self._executor, service.read_image, model.reader, data, max_pages, annotated
            )
        if not self._ready:
            await self.warm_up(model)
        return await self._in_process(model, data, max_pages, annotated)

    async def _in_process(
        self, model: LoadedModel, data: bytes, max_pages: int, annotated: bool = True
    ) -> list[service.Page]:
        await self._start()
        file = str(model.file) if model.file else None
        return await asyncio.get_running_loop().run_in_executor(
            self._executor,
            _read_in_process,
            file,
            model.key,
            data,
            max_pages,
            self.torch_threads,
            annotated,
        )

    async def _start(self) -> None:
        """Start the fork server and every worker process off the event loop, once."""
        if self._started:
            return
        async with self._start_lock:
            if not self._started:
                await asyncio.to_thread(self._start_processes)
                self._started = True

    def _start_processes(self) -> None:
        for started in [self._executor.submit(os.getpid) for _ in range(self.workers)]:
            started.result()

    def start_warm_up(self, model: LoadedModel) -> asyncio.Task[None] | None:
        """Begin starting the workers and loading the model there (once); the task."""
        if self.processes and self._warming is None:
            self._warming = asyncio.get_running_loop().create_task(self._warm(model))
        return self._warming

    async def warm_up(self, model: LoadedModel) -> None:
        """Start every worker process and load the model there before people wait on it."""
        task = self.start_warm_up(model)
        if task is not None:
            await task

    async def _warm(self, model: LoadedModel) -> None:
        from vision.decode import ImageError

        results = await asyncio.gather(
            *(self._in_process(model, WARM_UP_IMAGE, 1) for _ in range(self.workers)),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, ImageError):
                raise result  # the photos go on being read in threads
        self._ready = True
        log.info("%d vision worker processes ready", self.workers)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._threads is not None and self._threads is not self._executor:
            self._threads.shutdown(wait=True, cancel_futures=True)
