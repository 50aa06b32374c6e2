"""Add-on preferences: where and how the capture runs, and a button that checks the set-up.

The extension zip carries what a capture needs (ONNX Runtime, OpenCV, SciPy; see
``build.py``), so with Worker Python left empty the capture runs inside Blender, on the CPU. For GPU
lifting the user names a worker here: a Python with ``posemoe`` and a CUDA build of PyTorch (for
example the ``.venv/bin/python`` the README's first command makes, with CUDA torch installed there);
the capture then runs in that process (:mod:`posemoe.worker`).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty
from bpy.types import AddonPreferences, Operator

from posemoe import PoseMoEError
from posemoe.worker import check_setup

ADDON = __package__  # "bl_ext.<repository>.posemoe_mocap" once installed as an extension
CHECK_TIMEOUT_S = 180  # a first torch import on a cold disk can take a minute


class PoseMoEPreferences(AddonPreferences):
    bl_idname = ADDON

    python: StringProperty(
        name="Worker Python", subtype="FILE_PATH",
        description="Only for GPU lifting: a Python with posemoe and a CUDA build of PyTorch to run the capture "
                    "in (for example the project's .venv/bin/python). Empty: capture inside Blender on the CPU, "
                    "with the packages this extension carries")
    device: EnumProperty(
        name="Device", default="AUTO",
        items=[("AUTO", "Auto", "CUDA when a GPU is usable, else the CPU"),
               ("CPU", "CPU", "Always the CPU"), ("CUDA", "CUDA", "An NVIDIA GPU through PyTorch")])
    backend: EnumProperty(
        name="Backend", default="AUTO",
        items=[("AUTO", "Auto", "PyTorch when it is installed, else ONNX Runtime"),
               ("TORCH", "PyTorch", "PyTorch (CPU or CUDA)"), ("ONNX", "ONNX Runtime", "ONNX Runtime (CPU)")])
    weights: StringProperty(
        name="Model", subtype="DIR_PATH",
        description="A weights folder (config.json with model.safetensors or model.onnx). Empty: the shipped "
                    "PoseMoE model")
    check_result: StringProperty(name="Set-up check", description="What the last check found")

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "python")
        row = layout.row()
        row.prop(self, "device")
        row.prop(self, "backend")
        layout.prop(self, "weights")
        layout.operator(POSEMOE_OT_check_setup.bl_idname, icon="CHECKMARK")
        if self.check_result:
            box = layout.box()
            for line in self.check_result.splitlines():
                box.label(text=line)


def preferences(context=None):
    """This add-on's preferences, or None when it is not registered as an add-on (scripts, batch)."""
    addon = (context or bpy.context).preferences.addons.get(ADDON)
    return addon.preferences if addon is not None else None


def check_python(python: str | None) -> dict:
    """:func:`posemoe.worker.check_setup` for ``python`` (a worker interpreter) or for this process."""
    if not python:
        return check_setup()
    path = Path(bpy.path.abspath(python))
    if not path.is_file():
        raise PoseMoEError(f"The worker Python '{path}' does not exist; choose the python of a virtual environment "
                           "with posemoe installed, or clear the field to capture inside Blender.")
    try:
        done = subprocess.run([str(path), "-m", "posemoe.worker", "--check"], capture_output=True, text=True,
                              timeout=CHECK_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PoseMoEError(f"The worker Python '{path}' could not be run ({error}).") from error
    if done.returncode != 0:
        if "No module named 'posemoe" in done.stderr:
            raise PoseMoEError(f"'{path}' runs but cannot import posemoe; install it there with "
                               "`python -m pip install -e <the posemoe folder>`.")
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise PoseMoEError(f"'{path}' failed the check (exit status {done.returncode}): {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def plan(prefs, report: dict) -> str:
    """One sentence: where the next capture will run and on what, and why, from ``report``
    (:func:`check_python`'s) and the preferences (None: the defaults)."""
    python = prefs.python if prefs else ""
    backend = prefs.backend if prefs else "AUTO"
    device = prefs.device if prefs else "AUTO"
    torch = report["torch"] and backend in ("AUTO", "TORCH")
    engine = (f"PyTorch {report['torch']} on " + (report["gpu"] if report["gpu"] and device != "CPU" else "the CPU")
              if torch else f"ONNX Runtime {report['onnxruntime']} on the CPU")
    if not report["can_capture"]:
        return (f"Captures would run in the Worker Python {python} (set above)" if python else
                "No Worker Python is set, so captures would run inside Blender") + ", which cannot capture (below)."
    if python:
        where = f"Captures run in the Worker Python {python} (set above), lifting with {engine}."
    else:
        where = f"No Worker Python is set, so captures run inside Blender, lifting with {engine}."
    if device == "CUDA" and not (torch and report["gpu"]):
        where += (" CUDA was asked for but is not usable here: set Worker Python to a Python with a CUDA build of "
                  "PyTorch, or choose Auto.")
    elif not python and not report["gpu"]:
        where += " For GPU lifting, set Worker Python to a Python with a CUDA build of PyTorch."
    return where


class POSEMOE_OT_check_setup(Operator):
    """Check what the capture can use: PyTorch, CUDA and the GPU, ONNX Runtime, OpenCV"""

    bl_idname = "posemoe.check_setup"
    bl_label = "Check Set-up"

    def execute(self, context):
        prefs = preferences(context)
        try:
            report = check_python(prefs.python if prefs else None)
        except PoseMoEError as error:
            if prefs:
                prefs.check_result = str(error)
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        text = "\n".join([plan(prefs, report), *report["summary"]])
        if prefs:
            prefs.check_result = text
        self.report({"INFO"} if report["can_capture"] else {"WARNING"}, " ".join(report["summary"]))
        return {"FINISHED"}


CLASSES = (PoseMoEPreferences, POSEMOE_OT_check_setup)
