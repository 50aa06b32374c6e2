"""Where the capture's video comes from, which of its frames to capture, and on which scene frames the
keys land: a video file, a Movie Clip of the .blend, or a movie strip of the Video Sequencer.

A file is captured over the panel's Start and End, its first captured frame keyed at the scene's start
frame, as always. A Movie Clip or a strip brings its own timing: every video frame it shows is captured
and keyed on the scene frame where Blender shows it, so the armature plays in step with the clip or
the edit. Blender's rules, from its sources and checked by rendering (``tests/test_extension.py``
renders the sequencer and finds the keyed video frame in the picture):

- a Movie Clip (Clip Editor, camera backgrounds) shows file frame ``F - clip.frame_start +
  clip.frame_offset`` at scene frame ``F``, one video frame per scene frame whatever the rates;
- a movie strip shows file frame ``round((F - frame_start) * r) + animation_offset_start`` between its
  handles (``frame_final_start`` <= F < ``frame_final_end``; trimming moves the handles in scene
  frames). ``r`` is 1, or the movie's rate over the scene's when the strip was added with "Adjust
  Playback Rate" (a flag Python cannot read: it shows in ``frame_duration``, the content's length in
  scene frames, which that flag shortens or stretches). Keys then fall between scene frames, as the
  video frames do;
- a Movie Clip strip shows clip frame ``F - frame_start + animation_offset_start``, plus the clip's
  ``frame_offset``.

Retimed or reversed strips are refused with a sentence: Python cannot read a retiming key's place in
the video. Strobe is ignored (it holds pictures on screen; the motion is still keyed on every frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import bpy

from posemoe import PoseMoEError


@dataclass(frozen=True)
class Source:
    """A video and its timing in the scene.

    path: the video file, absolute. start, stop: the video frames to capture (0-based, stop exclusive,
    None: to the end). first_scene_frame, step: video frame ``v`` shows at scene frame
    ``first_scene_frame + v * step`` (None for a file: its first captured frame is keyed at the
    scene's start). clip: the user's Movie Clip, used as the camera's background as it is; None: the
    capture loads its own. timed: whether the source brings its own timing (clip or strip), so the
    scene's frame rate and size stay as they are. name: for actions and objects.
    """

    path: Path
    start: int
    stop: int | None
    first_scene_frame: float | None = None
    step: float = 1.0
    clip: object | None = None
    name: str = ""

    @property
    def timed(self) -> bool:
        return self.first_scene_frame is not None

    def scene_frame(self, video_frame: int, scene) -> float:
        """The scene frame that holds the keys of the take frame from ``video_frame``; for a file, the
        scene's start frame (the first captured frame is the first key)."""
        if self.first_scene_frame is None:
            return float(scene.frame_start)
        return self.first_scene_frame + video_frame * self.step


def _video_path(filepath: str, owner, what: str) -> Path:
    """The absolute path of ``filepath`` (``//`` relative to the .blend, or to ``owner``'s library);
    raises PoseMoEError, naming ``what``, when it is packed or missing."""
    if getattr(owner, "packed_file", None) is not None:
        raise PoseMoEError(f"The video of {what} is packed into the .blend; unpack it (File > External Data > "
                           "Unpack Resources) so the capture can read it.")
    if not filepath:
        raise PoseMoEError(f"{what[0].upper()}{what[1:]} has no video file.")
    if filepath.startswith("//") and not bpy.data.filepath and getattr(owner, "library", None) is None:
        raise PoseMoEError(f"The video of {what} is relative to the .blend ({filepath}), which has not been saved; "
                           "save the .blend or make the path absolute.")
    path = Path(bpy.path.abspath(filepath, library=getattr(owner, "library", None)))
    if not path.is_file():
        raise PoseMoEError(f"The video of {what} ('{path}') does not exist; relink it or choose another source.")
    return path


def _frame_count(path: Path) -> int:
    try:
        from posemoe.video import probe
    except ImportError as error:
        raise PoseMoEError("Capturing from a strip needs OpenCV, which this Blender lacks: install the PoseMoE "
                           "extension zip made for this platform.") from error
    return probe(path).frame_count


def _strips(scene):
    editor = scene.sequence_editor
    if editor is None:
        return None, []
    strips = getattr(editor, "strips_all", None)  # 4.4+; sequences_all before (gone in 5.0)
    return editor, list(strips if strips is not None else editor.sequences_all)


def from_file(settings) -> Source:
    if not settings.video:
        raise PoseMoEError("Choose a video in the Mocap panel first.")
    path = Path(bpy.path.abspath(settings.video))
    if not path.is_file():
        raise PoseMoEError(f"The video '{path}' does not exist; choose another file.")
    if settings.stop and settings.stop <= settings.start:
        raise PoseMoEError(f"The end frame ({settings.stop}) must come after the start frame ({settings.start}), "
                           "or be 0 for the end of the video.")
    return Source(path, settings.start, settings.stop or None, name=path.stem)


def from_clip(clip) -> Source:
    if clip is None:
        raise PoseMoEError("Choose the Movie Clip to capture in the Mocap panel, or another source.")
    if clip.source != "MOVIE":
        raise PoseMoEError(f"Movie Clip '{clip.name}' is an image sequence; capture works on a video file.")
    path = _video_path(clip.filepath, clip, f"Movie Clip '{clip.name}'")
    first = max(0, clip.frame_offset)
    return Source(path, first, None, first_scene_frame=clip.frame_start - clip.frame_offset, step=1.0, clip=clip,
                  name=Path(clip.name).stem)


def from_strip(scene, name: str) -> Source:
    editor, strips = _strips(scene)
    if editor is None or not strips:
        raise PoseMoEError("The scene has no Video Sequencer strips; add the video as a movie strip, or choose "
                           "another source.")
    if name:
        strip = next((s for s in strips if s.name == name), None)
        if strip is None:
            raise PoseMoEError(f"The sequencer has no strip named '{name}'; choose another strip.")
    else:
        strip = editor.active_strip
        if strip is None:
            raise PoseMoEError("No strip is active in the Video Sequencer; click a movie strip or name one in the "
                               "Mocap panel.")
    what = f"strip '{strip.name}'"
    if strip.type not in ("MOVIE", "MOVIECLIP"):
        raise PoseMoEError(f"Strip '{strip.name}' is not a movie (it is {strip.type.lower()}); choose a movie strip.")
    if len(getattr(strip, "retiming_keys", ())):
        raise PoseMoEError(f"Strip '{strip.name}' is retimed, and where its retiming keys fall in the video cannot be "
                           "read from Python; reset its retiming or capture the video file.")
    if strip.use_reverse_frames:
        raise PoseMoEError(f"Strip '{strip.name}' plays backwards; switch off Reverse Frames or capture the video file.")
    start, shown_from, shown_to = int(strip.frame_start), strip.frame_final_start, strip.frame_final_end
    if strip.type == "MOVIECLIP":
        if strip.clip is None or strip.clip.source != "MOVIE":
            raise PoseMoEError(f"Clip strip '{strip.name}' has no Movie Clip of a video file; choose a movie strip.")
        path = _video_path(strip.clip.filepath, strip.clip, f"Movie Clip '{strip.clip.name}'")
        first_video, rate = strip.animation_offset_start + strip.clip.frame_offset, 1.0
        count = _frame_count(path)
    else:
        path = _video_path(strip.filepath, scene, what)
        count = _frame_count(path)
        first_video = strip.animation_offset_start
        content = count - strip.animation_offset_start - strip.animation_offset_end
        scene_fps = scene.render.fps / scene.render.fps_base
        if strip.frame_duration == content:
            rate = 1.0
        elif strip.fps > 0 and strip.frame_duration == int(content * scene_fps / strip.fps):
            rate = strip.fps / scene_fps  # "Adjust Playback Rate": video frames per scene frame
        else:
            raise PoseMoEError(f"Strip '{strip.name}' holds {strip.frame_duration} frames of a video with {content}; its "
                               "timing cannot be read. Reload the strip or capture the video file.")
    def shown(frame: int) -> int:  # the file frame at a scene frame (Blender rounds halves up)
        return math.floor((frame - start) * rate + 0.5) + first_video

    first, last = shown(shown_from), min(shown(shown_to - 1), count - 1)
    if last < first:
        raise PoseMoEError(f"Strip '{strip.name}' shows no frames of its video; widen it in the sequencer.")
    return Source(path, first, last + 1, first_scene_frame=start - first_video / rate, step=1.0 / rate,
                  name=Path(strip.name).stem)


def resolve(context) -> Source:
    """The video the panel points at (``scene.posemoe``), checked: raises PoseMoEError with a sentence
    for the user when it is missing, packed, relative to an unsaved .blend, or unreadable in time."""
    settings = context.scene.posemoe
    if settings.source == "CLIP":
        return from_clip(settings.clip)
    if settings.source == "STRIP":
        return from_strip(context.scene, settings.strip)
    return from_file(settings)

