"""The Capture operator: video in, animated armature out, with Blender responsive all along.

Invoked from the panel it is modal: the capture runs beside Blender (a thread, or the worker Python of
the preferences, see :mod:`posemoe.worker`), a timer polls it, the progress bar and the status bar
show the stage and percentage, Esc or the panel's Cancel stops it. The scene is not touched until the
capture is complete; then :func:`apply.apply_takes` puts everyone captured in, all or nothing, as one
undo step.
Executed (scripts, ``blender --background``, tests) it runs the same steps synchronously.
"""

from __future__ import annotations

import bpy
from bpy.types import Operator

from posemoe import Cancelled, PoseMoEError
from posemoe.motion.clean import CleanupSettings
from posemoe.settings import Settings
from posemoe.worker import CaptureJob, start_capture

from . import retarget, sources
from .apply import Applied, apply_takes
from .preferences import preferences

POLL_S = 0.1


class CaptureSession:
    """One capture from the scene's settings (``scene.posemoe``) and the add-on's preferences.

    Checks everything it can before the long work starts (the video exists, the target armature fits a
    bone map), then starts the job. Raises PoseMoEError with a sentence for the user.
    """

    def __init__(self, context):
        settings = context.scene.posemoe
        self.notes: list[str] = []  # the capture's sentences for the user, once it is done
        self.source = sources.resolve(context)  # a file, a Movie Clip or a sequencer strip, with its timing
        self.video = self.source.path
        self.target = None
        self.bone_map = None
        if settings.target == "EXISTING":
            self.target = settings.armature
            if self.target is None:
                raise PoseMoEError("Choose the armature to animate, or set the target to New Armature.")
            if settings.bone_map == "AUTO":
                retarget.detect_map(self.target)  # raises now, naming what is missing, not after the capture
            else:
                self.bone_map = settings.bone_map.lower()
                retarget.resolve_map(self.bone_map, self.target, needed_by=f"the '{self.bone_map}' map",
                                     advice="choose another map or Auto-detect.")
        self.cleanup = CleanupSettings(smoothing=settings.smoothing.lower(), strength=settings.strength,
                                       foot_lock=settings.foot_lock.lower(), root=settings.root.lower(),
                                       height=settings.height or None)
        self.show_video, self.match_scene = settings.show_video, settings.match_scene
        capture_settings = Settings(start=self.source.start, stop=self.source.stop, flip=settings.flip,
                                    stride=settings.stride or None, fov_degrees=settings.fov, hands=settings.hands,
                                    camera=settings.camera.lower(), **people(settings))
        prefs = preferences(context)
        self.job: CaptureJob = start_capture(
            self.video, capture_settings,
            python=bpy.path.abspath(prefs.python) if prefs and prefs.python else None,
            weights=bpy.path.abspath(prefs.weights) if prefs and prefs.weights else None,
            backend=prefs.backend.lower() if prefs else "auto", device=prefs.device.lower() if prefs else "auto")

    def apply(self, context) -> list[Applied]:
        """Put the finished job's takes into the scene (raises the job's error or Cancelled)."""
        takes = self.job.result()
        self.notes = takes[0].notes
        match = ("range" if self.source.timed else "video") if self.match_scene else "none"
        first = min(take.first_frame for take in takes)
        return apply_takes(takes, self.cleanup, self.source.name, target=self.target, bone_map=self.bone_map,
                           camera=self.show_video, match=match,
                           frame_start=self.source.scene_frame(first, context.scene),
                           frame_step=self.source.step, video=self.video, clip=self.source.clip)


def people(settings) -> dict:
    """The panel's People choice as :class:`posemoe.settings.Settings` fields."""
    if settings.people == "ALL":
        return {"people": 0}
    if settings.people == "PICK":
        return {"picks": ((float(settings.pick[0]), float(settings.pick[1]), int(settings.pick_frame)),)}
    return {"people": 1}


def _summary(applied: list[Applied], notes: list[str]) -> str:
    onto = [f"{len(a.cleaned.joints)} frames onto '{a.armature.name}' (action '{a.action.name}')" for a in applied]
    text = f"Captured {onto[0]}." if len(onto) == 1 else f"Captured {len(onto)} people: {'; '.join(onto)}."
    return " ".join([text, *notes, *(w for a in applied for w in a.warnings)])


class POSEMOE_OT_capture(Operator):
    """Capture the video's motion onto an armature (Esc cancels)"""

    bl_idname = "posemoe.capture"
    bl_label = "Capture"
    bl_options = {"REGISTER", "UNDO"}

    #: The running session, for the panel's progress bar and the Cancel button (one capture at a time).
    running: CaptureSession | None = None
    _cancel_requested = False

    @classmethod
    def poll(cls, context):
        return cls.running is None and context.scene is not None

    # The synchronous path: scripts, background mode, tests.
    def execute(self, context):
        wm = context.window_manager
        try:
            session = CaptureSession(context)
        except PoseMoEError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        wm.progress_begin(0, 100)
        try:
            session.job.wait(progress=lambda job: wm.progress_update(job.fraction * 100))
            applied = session.apply(context)
        except PoseMoEError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        finally:
            wm.progress_end()
        self.report({"INFO"}, _summary(applied, session.notes))
        return {"FINISHED"}

    # The modal path: the panel's button.
    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        try:
            session = CaptureSession(context)
        except PoseMoEError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        cls = type(self)
        cls.running, cls._cancel_requested = session, False
        wm = context.window_manager
        self._timer = wm.event_timer_add(POLL_S, window=context.window)
        wm.progress_begin(0, 100)
        wm.modal_handler_add(self)
        self._show(context, session)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        session = type(self).running
        if event.type == "ESC" or type(self)._cancel_requested:
            session.job.cancel()
            self._end(context)
            self.report({"WARNING"}, "Capture cancelled; the scene is unchanged.")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}  # Blender stays usable while the capture runs
        finished = session.job.poll()
        self._show(context, session)
        if not finished:
            return {"PASS_THROUGH"}
        self._end(context)
        try:
            applied = session.apply(context)
        except Cancelled:
            self.report({"WARNING"}, "Capture cancelled; the scene is unchanged.")
            return {"CANCELLED"}
        except PoseMoEError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        self.report({"INFO"}, _summary(applied, session.notes))
        return {"FINISHED"}

    def cancel(self, context):
        """Blender ends the modal operator (a file is loaded, the window closes): stop the capture."""
        if type(self).running is not None:
            type(self).running.job.cancel()
        self._end(context)

    def _show(self, context, session: CaptureSession) -> None:
        context.window_manager.progress_update(session.job.fraction * 100)
        context.workspace.status_text_set(f"PoseMoE: {session.job.status}  (Esc to cancel)")
        for area in context.screen.areas if context.screen else ():
            if area.type == "VIEW_3D":
                area.tag_redraw()

    def _end(self, context) -> None:
        wm = context.window_manager
        if getattr(self, "_timer", None) is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        type(self).running = None
        for area in context.screen.areas if context.screen else ():
            area.tag_redraw()


class POSEMOE_OT_cancel_capture(Operator):
    """Stop the running capture; the scene stays as it was"""

    bl_idname = "posemoe.cancel_capture"
    bl_label = "Cancel Capture"

    @classmethod
    def poll(cls, context):
        return POSEMOE_OT_capture.running is not None

    def execute(self, context):
        POSEMOE_OT_capture._cancel_requested = True
        return {"FINISHED"}


CLASSES = (POSEMOE_OT_capture, POSEMOE_OT_cancel_capture)
