"""Captures that run beside the caller: in a thread of this process or in a worker subprocess.

Blender's own Python usually lacks torch, ONNX Runtime and OpenCV. The add-on then starts a worker
with a Python the user chose (a virtual environment with ``posemoe`` and, for GPU lifting, a CUDA
torch) and talks to it through a small line protocol, so Blender stays responsive and the worker can
be stopped at any moment. When this process can capture by itself, the same job runs in a thread.
Either way the caller sees one :class:`CaptureJob`: ``poll()`` it (from a timer), ``cancel()`` it, or
``wait()`` for it (the synchronous path of background mode and tests).

The protocol (version :data:`PROTOCOL`)
---------------------------------------
The parent runs ``PYTHON -m posemoe.worker`` and writes one JSON object, the job, to its stdin::

    {"protocol": 1, "video": "...", "out": ".../take.npz", "settings": {...}, "weights": null,
     "backend": "auto", "device": "auto"}

``settings`` holds the fields of :class:`posemoe.pipeline.Settings`. The worker answers with one JSON
object per line on stdout:

- ``{"hello": {"protocol": 1, "posemoe": "0.1.0"}}`` first;
- ``{"progress": ["detect", 120, 300]}`` as the capture goes (stages as in :mod:`posemoe.pipeline`);
- ``{"done": ".../take.npz"}`` once the take is saved, then exit status 0; or
- ``{"error": "a sentence for the user"}`` and exit status 1.

Cancelling kills the worker; the parent gives it a temporary folder for the take and removes the folder
whatever happens, so a killed worker leaves nothing behind. ``PYTHON -m posemoe.worker --check`` prints
one JSON line, :func:`check_setup`'s report.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

from . import Cancelled, PoseMoEError, __version__

PROTOCOL = 1

#: Share of the progress bar each capture stage fills: detection is most of the time on every machine.
STAGE_SPAN = {"detect": (0.0, 0.85), "lift": (0.85, 0.97), "trajectory": (0.97, 1.0)}
STAGE_TEXT = {"start": "Starting", "detect": "Detecting the person", "lift": "Lifting to 3D",
              "trajectory": "Placing the root", "done": "Done"}


# ----------------------------------------------------------------------------------------------------
# What can run here.

def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:  # noqa: BLE001 - any failure to import means "not usable here"
        return None


def check_setup() -> dict:
    """What this Python can do, in data and in plain sentences.

    Returns {"python", "posemoe", "torch", "cuda", "gpu", "onnxruntime", "opencv",
    "can_capture", "can_lift_on_gpu", "summary"}: versions are strings or None, ``summary`` a list of
    sentences for a person. Importing torch takes a few seconds the first time.
    """
    report = {"python": sys.executable, "posemoe": __version__, "torch": _version("torch"), "cuda": None,
              "gpu": None, "onnxruntime": _version("onnxruntime"), "opencv": _version("cv2")}
    if report["torch"]:
        import torch

        report["cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            report["gpu"] = torch.cuda.get_device_name(0)
    # Detection runs BlazePose on ONNX Runtime; lifting runs on PyTorch or ONNX Runtime.
    report["can_capture"] = bool(report["onnxruntime"] and report["opencv"])
    report["can_lift_on_gpu"] = report["gpu"] is not None
    summary = [f"Python {sys.version.split()[0]} at {sys.executable} with posemoe {__version__}."]
    if report["torch"]:
        summary.append(f"PyTorch {report['torch']} found"
                       + (f"; CUDA works on {report['gpu']}." if report["gpu"] else
                          f"; built with CUDA {report['cuda']} but no GPU is usable." if report["cuda"] else
                          ", CPU only."))
    else:
        summary.append("PyTorch not found.")
    summary.append(f"ONNX Runtime {report['onnxruntime']} found." if report["onnxruntime"] else "ONNX Runtime not found.")
    if report["can_capture"]:
        summary.append("Ready to capture" + (" with GPU lifting." if report["gpu"] else " on the CPU."))
    else:
        lacking = [name for name, ok in (("ONNX Runtime", report["onnxruntime"]), ("OpenCV", report["opencv"])) if not ok]
        summary.append(f"Cannot capture here: {', '.join(lacking)} missing. In Blender, install the PoseMoE "
                       "extension zip made for this platform, which carries them; elsewhere install posemoe into "
                       "this Python (pip install -e <the posemoe folder>) or choose another interpreter.")
    report["summary"] = summary
    return report


def can_capture_here() -> bool:
    """Whether this process can detect and lift by itself, without importing torch (fast)."""
    import importlib.util

    def found(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a broken or blocked install counts as absent
            return False

    return found("onnxruntime") and found("cv2")


# ----------------------------------------------------------------------------------------------------
# The job the caller holds.

@dataclass
class Job:
    """One capture request: what the worker reads from its stdin (plus the protocol version)."""

    video: str
    out: str
    settings: dict
    weights: str | None = None
    backend: str = "auto"
    device: str = "auto"


def _settings_from(data: dict):
    from .settings import Settings

    data = dict(data)
    data["picks"] = tuple(tuple(pick) for pick in data.get("picks", ()))
    return Settings(**data)


def _capture(job: Job, progress, cancel=None):
    """Run the capture a job describes and save its take; returns the take's path."""
    from .lift import Lifter
    from .pipeline import capture_people
    from .take import save_takes

    lifter = Lifter(job.weights, backend=job.backend, device=job.device)
    takes = capture_people(job.video, _settings_from(job.settings), lifter=lifter, progress=progress, cancel=cancel)
    if cancel is not None and cancel():
        raise Cancelled("The capture was cancelled; nothing was written.")
    return save_takes(job.out, takes)


class CaptureJob:
    """A capture running beside the caller. Poll it from a timer, or wait for it.

    Attributes, current after each :meth:`poll`: ``stage`` (a key of :data:`STAGE_TEXT`), ``done`` and
    ``total`` (items of that stage), ``finished`` (bool).
    """

    def __init__(self, video: str | Path, settings, weights: str | Path | None = None,
                 backend: str = "auto", device: str = "auto"):
        self._folder = Path(tempfile.mkdtemp(prefix="posemoe-capture-"))
        self.job = Job(video=str(Path(video).resolve()), out=str(self._folder / "take.npz"),
                       settings=asdict(settings), weights=None if weights is None else str(weights),
                       backend=backend, device=device)
        self._events: queue.Queue = queue.Queue()
        self.stage, self.done, self.total = "start", 0, 1
        self.finished = False
        self._takes = None
        self._error: PoseMoEError | None = None

    # Subclasses start the work and put ("progress", stage, done, total), ("done", path) or
    # ("error", PoseMoEError) on self._events.

    @property
    def fraction(self) -> float:
        """Overall progress in [0, 1]."""
        if self.finished:
            return 1.0
        low, high = STAGE_SPAN.get(self.stage, (0.0, 0.0))
        return low + (high - low) * min(self.done / max(self.total, 1), 1.0)

    @property
    def status(self) -> str:
        """One line for a status bar, e.g. ``Detecting the person: 120 / 300 frames (34 %)``."""
        text = STAGE_TEXT.get(self.stage, self.stage)
        unit = {"detect": " frames", "lift": " windows"}.get(self.stage)
        if unit:
            text += f": {self.done} / {self.total}{unit}"
        return f"{text} ({self.fraction * 100:.0f} %)"

    def poll(self) -> bool:
        """Take in what happened since the last poll; returns ``finished``."""
        while not self.finished:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            self._handle(event)
        return self.finished

    def _handle(self, event: tuple) -> None:
        kind = event[0]
        if kind == "progress":
            self.stage, self.done, self.total = event[1], int(event[2]), int(event[3])
        elif kind == "done":
            from .take import load_takes

            try:
                self._takes = load_takes(event[1])
            except PoseMoEError as error:
                self._error = error
            self._finish("done")
        elif kind == "error":
            self._error = event[1]
            self._finish("done")

    def _finish(self, stage: str) -> None:
        self.stage, self.finished = stage, True
        self._stop()
        shutil.rmtree(self._folder, ignore_errors=True)

    def result(self):
        """The takes (:class:`posemoe.take.Take`, person 1 first) of a finished job; raises its
        PoseMoEError if it failed."""
        if not self.finished:
            raise RuntimeError("result() of a capture that is still running")
        if self._error is not None:
            raise self._error
        return self._takes

    def wait(self, progress=None, timeout: float | None = None):
        """Block until the job ends, calling ``progress(job)`` on every event; returns :meth:`result`.
        ``timeout``: seconds to wait for the next event (not for the whole job) before stopping it."""
        while not self.finished:
            try:
                event = self._events.get(timeout=timeout)
            except queue.Empty:
                self.cancel()
                raise PoseMoEError(f"The capture reported nothing for {timeout} s and was stopped.") from None
            self._handle(event)
            if progress is not None:
                progress(self)
        return self.result()

    def cancel(self) -> None:
        """Stop the work now; nothing it wrote is left behind. :meth:`result` then raises Cancelled."""
        if not self.finished:
            self._error = Cancelled("The capture was cancelled; nothing was changed.")
            self._finish("done")

    def _stop(self) -> None:
        """Stop the thread or the process (called once, when the job finishes or is cancelled)."""


class ThreadJob(CaptureJob):
    """The capture in a thread of this process (ONNX Runtime, OpenCV and torch release the GIL while they work)."""

    def __init__(self, video, settings, weights=None, backend="auto", device="auto"):
        super().__init__(video, settings, weights, backend, device)
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._run, name="posemoe-capture", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            path = _capture(self.job, lambda *p: self._events.put(("progress", *p)), self._cancelled.is_set)
            self._events.put(("done", str(path)))
        except PoseMoEError as error:
            self._events.put(("error", error))
        except Exception as error:  # noqa: BLE001 - a bug must still end the job, with its description
            self._events.put(("error", PoseMoEError(f"The capture failed with an internal error: {error!r}.")))

    def _stop(self) -> None:
        self._cancelled.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=10)  # it checks the flag between frames and batches


class WorkerJob(CaptureJob):
    """The capture in ``PYTHON -m posemoe.worker``, a subprocess speaking the line protocol."""

    def __init__(self, python: str | Path, video, settings, weights=None, backend="auto", device="auto"):
        super().__init__(video, settings, weights, backend, device)
        self.python = str(python)
        if not Path(self.python).is_file():
            shutil.rmtree(self._folder, ignore_errors=True)
            raise PoseMoEError(f"The worker Python '{self.python}' does not exist. Set the add-on's interpreter to "
                               "a Python with posemoe installed (for example the .venv/bin/python the README's "
                               "first command makes), or clear it to capture inside Blender.")
        try:
            self._process = subprocess.Popen(
                [self.python, "-m", "posemoe.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, bufsize=1)
        except OSError as error:
            shutil.rmtree(self._folder, ignore_errors=True)
            raise PoseMoEError(f"The worker Python '{self.python}' could not be started ({error.strerror}); "
                               "choose an executable Python in the add-on's preferences.") from error
        self._stderr: deque[str] = deque(maxlen=20)
        self._said_hello = False
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        try:
            self._process.stdin.write(json.dumps({"protocol": PROTOCOL, **asdict(self.job)}) + "\n")
            self._process.stdin.close()
        except OSError:
            pass  # it died at once: _read_stdout reports why

    def _read_stderr(self) -> None:
        for line in self._process.stderr:
            self._stderr.append(line.rstrip())

    def _read_stdout(self) -> None:
        for line in self._process.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue  # a library printing to stdout; only our JSON lines count
            if not isinstance(message, dict):
                continue
            if "hello" in message:
                self._said_hello = True
                theirs = message["hello"].get("protocol")
                if theirs != PROTOCOL:
                    self._events.put(("error", PoseMoEError(
                        f"The worker Python '{self.python}' has posemoe {message['hello'].get('posemoe')}, which "
                        f"speaks protocol {theirs}, not {PROTOCOL}; update posemoe there to {__version__}.")))
                    return
            elif "progress" in message:
                self._events.put(("progress", *message["progress"]))
            elif "done" in message:
                self._events.put(("done", message["done"]))
                return
            elif "error" in message:
                self._events.put(("error", PoseMoEError(message["error"])))
                return
        code = self._process.wait()
        self._stderr_reader.join(timeout=5)  # its last lines say why it died: read them all first
        self._events.put(("error", self._crash_error(code)))

    def _crash_error(self, code: int) -> PoseMoEError:
        tail = "\n".join(self._stderr)
        if "No module named 'posemoe" in tail:
            return PoseMoEError(f"The worker Python '{self.python}' cannot import posemoe; install it there "
                                "(`python -m pip install -e <the posemoe folder>`) or choose another interpreter.")
        last = next((line for line in reversed(self._stderr) if line.strip()), "no message")
        return PoseMoEError(f"The worker Python '{self.python}' stopped unexpectedly (exit status {code}): {last}")

    def _stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()


def start_capture(video: str | Path, settings, *, python: str | Path | None = None,
                  weights: str | Path | None = None, backend: str = "auto", device: str = "auto") -> CaptureJob:
    """Start capturing ``video`` with ``settings`` (a :class:`posemoe.pipeline.Settings`).

    python: a worker interpreter; None runs the capture in a thread here, which needs ONNX Runtime and
    OpenCV importable (:func:`can_capture_here`). Raises PoseMoEError when neither works.
    """
    if python:
        return WorkerJob(python, video, settings, weights, backend, device)
    if not can_capture_here():
        raise PoseMoEError("This Python cannot capture (it lacks ONNX Runtime or OpenCV). "
                           "Install the PoseMoE extension zip made for this platform, which carries them, or set "
                           "the add-on's worker interpreter to a Python with posemoe installed, for example the "
                           ".venv/bin/python that the README's first command makes.")
    return ThreadJob(video, settings, weights, backend, device)


# ----------------------------------------------------------------------------------------------------
# The worker's side.

def _say(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def serve(stdin=None) -> int:
    """Read one job from stdin, capture, answer in the protocol; returns the exit status."""
    _say({"hello": {"protocol": PROTOCOL, "posemoe": __version__}})
    try:
        request = json.loads((stdin or sys.stdin).readline())
        if request.pop("protocol", None) != PROTOCOL:
            raise PoseMoEError(f"The add-on speaks another protocol than this worker ({PROTOCOL}); update both "
                               f"to the same posemoe version ({__version__} here).")
        job = Job(**request)
        path = _capture(job, lambda stage, done, total: _say({"progress": [stage, done, total]}))
    except PoseMoEError as error:
        _say({"error": str(error)})
        return 1
    except (json.JSONDecodeError, TypeError) as error:
        _say({"error": f"The worker received a job it cannot read ({error}); update the add-on and posemoe together."})
        return 1
    _say({"done": str(path)})
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--check"]:
        _say(check_setup())
        return 0
    if argv:
        print("usage: python -m posemoe.worker [--check]  (the job comes as one JSON line on stdin)", file=sys.stderr)
        return 2
    return serve()


if __name__ == "__main__":
    raise SystemExit(main())
