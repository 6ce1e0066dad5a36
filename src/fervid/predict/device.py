"""The model on a device, fed through a bounded queue: decoding, tracking and alignment go on
on the CPU while earlier batches are classified.

:class:`DeviceClassifier` runs the checkpoint's model in one worker thread on ``device``
(``auto``: CUDA when torch sees a GPU, else the CPU). ``submit`` hands it a batch and returns
a future; when :data:`QUEUE_DEPTH` batches wait, ``submit`` blocks, so a slow device holds
the decoder back instead of letting batches pile up in memory. The sinks of
:mod:`fervid.predict.sinks` get queued twins here (:class:`QueuedFrameSink`,
:class:`QueuedWindowSink`) that submit a batch and collect it later, in order.

Stage times: ``model`` sums the worker's time per batch, which overlaps the other stages.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import torch

from fervid.errors import OptionError
from fervid.predict.frames import frame_inputs
from fervid.predict.sinks import Classifier, FrameSink, WindowSink
from fervid.runs.checkpoint import Checkpoint

#: Batches that may wait for the device before ``submit`` blocks.
QUEUE_DEPTH = 4
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> torch.device:
    """``auto`` → ``cuda`` when torch sees a GPU, else ``cpu``; ``cpu``; ``cuda`` or
    ``cuda:N``.

    Raises
    ------
    OptionError
        An unknown name, or ``cuda`` where torch sees no GPU.
    """
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise OptionError(f"--device {device}: torch sees no CUDA GPU here (torch "
                              f"{torch.__version__}); use --device cpu or auto")
        return torch.device(name)
    raise OptionError(f"--device {device!r}: choose one of {', '.join(DEVICES)} (or cuda:N)")


def to_device(obj, device: torch.device, *, batch: bool = False):
    """A module or a batch on ``device``: a CUDA batch is pinned first and copied without
    blocking the host."""
    if device.type != "cuda":
        return obj
    if batch:
        return obj.pin_memory().to(device, non_blocking=True)
    return obj.to(device)


class DeviceClassifier(Classifier):
    """:class:`~fervid.predict.sinks.Classifier` on ``device``, with a worker thread fed by a
    bounded queue (:meth:`submit`). Use as a context manager, or call :meth:`close`."""

    def __init__(self, ckpt: Checkpoint, onnx_path: Path | str | None, batch_size: int,
                 device: str = "auto", depth: int = QUEUE_DEPTH) -> None:
        self.device = resolve_device(device)
        if onnx_path is not None and self.device.type != "cpu":
            raise OptionError(f"--onnx runs the model with onnxruntime on the CPU; --device "
                              f"{device} needs the torch model (leave out --onnx)")
        super().__init__(ckpt, onnx_path, batch_size)
        if self._onnx is None:
            self._model = to_device(self._model, self.device)
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._worker: threading.Thread | None = None
        #: Most batches waiting at once (tests check the bound).
        self.max_waiting = 0

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """``(N, n_classes) float64`` probabilities (:meth:`scores`) of one batch, at once."""
        return self.submit(inputs).result()[0]

    def submit(self, inputs: np.ndarray) -> Future:
        """Queue one batch; the future's result is ``(probabilities, seconds on the model)``.
        Blocks while the queue is full."""
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="fervid-model",
                                            daemon=True)
            self._worker.start()
        future: Future = Future()
        self._queue.put((inputs, future))
        self.max_waiting = max(self.max_waiting, self._queue.qsize())
        return future

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            inputs, future = item
            t0 = time.perf_counter()
            try:
                probs = self._run(inputs)
            except BaseException as err:  # handed to the caller, never lost in the thread
                future.set_exception(err)
            else:
                future.set_result((probs, time.perf_counter() - t0))

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        if self._onnx is not None:
            logits = torch.from_numpy(self._onnx(inputs))
        else:
            with torch.inference_mode():
                x = to_device(torch.from_numpy(inputs), self.device, batch=True)
                logits = self._model(x).logits.float().cpu()
        return self.scores(logits)

    def close(self) -> None:
        """Stop the worker once the queued batches are done."""
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join()
            self._worker = None

    def __enter__(self) -> DeviceClassifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class QueuedFrameSink(FrameSink):
    """:class:`~fervid.predict.sinks.FrameSink` whose batches are classified on the worker
    while frames keep coming; rows go to ``frame_probs.csv`` in frame order as their batch
    is done."""

    def __init__(self, classifier: DeviceClassifier, *args) -> None:
        super().__init__(classifier, *args)
        self._pending: deque[tuple[np.ndarray, np.ndarray, Future | None]] = deque()
        self._final = False

    def _flush(self) -> None:
        end = self.count
        block = np.full((end - self.done, self.n_classes), np.nan)
        rows = np.array(self.waiting, dtype=np.int64) - self.done
        future = None
        if self.crops:
            t0 = time.perf_counter()
            inputs = frame_inputs(np.stack(self.crops), self.classifier.ckpt.input_spec)
            self.timer.seconds["representation"] += time.perf_counter() - t0
            future = self.classifier.submit(inputs)
        self._pending.append((block, rows, future))
        self.done, self.crops, self.waiting = end, [], []
        self._collect(wait=self._final)

    def _collect(self, wait: bool) -> None:
        while self._pending and (wait or self._pending[0][2] is None
                                 or self._pending[0][2].done()):
            block, rows, future = self._pending.popleft()
            if future is not None:
                block[rows], seconds = future.result()
                self.timer.seconds["model"] += seconds
            self.rows.append(block)
            self.csv.write(block)

    def finish(self, *args, **kwargs):
        self._final = True  # the last flush waits for every batch
        return super().finish(*args, **kwargs)


class QueuedWindowSink(WindowSink):
    """:class:`~fervid.predict.sinks.WindowSink` whose batches of windows are classified on
    the worker; their probabilities are collected, in order, at the end."""

    def __init__(self, classifier: DeviceClassifier, *args) -> None:
        super().__init__(classifier, *args)
        self._futures: list[Future] = []
        self._final = False

    def _flush(self) -> None:
        if self.inputs:
            self._futures.append(self.classifier.submit(np.stack(self.inputs)))
            self.inputs = []
        if self._final:
            for future in self._futures:
                probs, seconds = future.result()
                self.probs.append(probs)
                self.timer.seconds["model"] += seconds
            self._futures = []

    def finish(self, *args, **kwargs):
        self._final = True
        return super().finish(*args, **kwargs)
