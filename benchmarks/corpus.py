"""What the benchmarks against MediaPipe (``detect.py``, ``hands.py``) share: the real clips, MediaPipe's
models as a Tasks bundle and its pictures, its results cached, jitter, and the time of one model call.

Its siblings import it as ``corpus`` when they run as scripts (``python benchmarks/detect.py`` puts this
folder first on the path) and as ``benchmarks.corpus`` when they are imported as ``benchmarks.<name>``.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import time
from pathlib import Path

import numpy as np

from posemoe.video import VideoInfo, probe, read_frames

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "media" / "real"
HANDS = REAL / "hands"
CACHE = ROOT / "benchmarks" / ".cache"


def videos(folder: Path) -> list[Path]:
    """The videos (``.mp4``, ``.mkv``, ``.mov``) in ``folder``, by name."""
    return sorted(p for p in folder.iterdir() if p.suffix in (".mp4", ".mkv", ".mov"))


def mediapipe_bundle(models: dict[str, tuple[str, int, float, float]]) -> bytes:
    """A MediaPipe Tasks ``.task`` bundle (a zip of models) from the mediapipe wheel's bare ``.tflite``
    files: the Tasks API wants models that carry input-normalisation metadata, which MediaPipe's own
    metadata writer adds. models: {name in the bundle: (file under the wheel's ``modules`` folder, its
    number of outputs, input mean, input std)}."""
    import zipfile

    import mediapipe
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer

    modules = Path(mediapipe.__file__).parent / "modules"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, (model, outputs, mean, std) in models.items():
            writer = metadata_writer.MetadataWriter.create(bytearray((modules / model).read_bytes()))
            writer.add_general_info(Path(model).stem).add_image_input(norm_mean=[mean], norm_std=[std])
            for i in range(outputs):
                writer.add_feature_output(name=f"output_{i}")
            bundle.writestr(name, bytes(writer.populate()[0]))
    return buffer.getvalue()


def mediapipe_image(image: np.ndarray):
    """A BGR picture (H, W, 3) as the RGB ``mediapipe.Image`` its Tasks take."""
    import cv2
    import mediapipe

    return mediapipe.Image(image_format=mediapipe.ImageFormat.SRGB, data=cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


def cached(video: Path, kind: str, fresh: bool, compute):
    """compute() for ``video``, kept in ``benchmarks/.cache`` as ``<kind>-<clip>-<key>.pkl``, the key made
    of the clip's path, size and time (a refreshed clip is measured again); ``fresh`` ignores the cache."""
    stat = video.stat()
    key = hashlib.sha1(f"{video.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    path = CACHE / f"{kind}-{video.stem}-{key}.pkl"
    if path.is_file() and not fresh:
        return pickle.loads(path.read_bytes())
    result = compute()
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(result))
    return result


def tfjs_keypoints(video: Path, kind: str) -> list | None:
    """The TensorFlow.js keypoints stored beside ``video`` as ``<stem>.<kind>_tfjs.json`` (per frame, a
    list of [x px, y px, z]), or None where there are none."""
    stored = video.with_name(f"{video.stem}.{kind}_tfjs.json")
    return json.loads(stored.read_text()) if stored.is_file() else None


def jitter(*tracks: np.ndarray) -> float:
    """Tracks (N, K, 2) px each, NaN where unseen -> median |second difference| over their keypoints and
    frames, px per frame^2 (NaN where there is none)."""
    accel = [np.linalg.norm(points[2:] - 2 * points[1:-1] + points[:-2], axis=-1).ravel() for points in tracks]
    values = np.concatenate(accel) if accel else np.zeros(0)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def middle_frame(video: Path) -> tuple[VideoInfo, np.ndarray]:
    """The video's facts and its middle frame's picture."""
    info = probe(video)
    return info, next(read_frames(video, info.frame_count // 2)).image


def median_ms(call, calls: int) -> float:
    """Median milliseconds of ``calls`` calls of ``call()``, after one untimed call (models load on
    their first)."""
    call()
    times = []
    for _ in range(calls):
        clock = time.perf_counter()
        call()
        times.append(time.perf_counter() - clock)
    return 1000 * float(np.median(times))
