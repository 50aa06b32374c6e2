"""Make MediaPipe's hand models as ONNX files in ``posemoe/detect/models/`` from the ``.tflite`` files.

The sources, from the ``mediapipe==0.10.21`` wheel (Apache-2.0, Google; newer wheels no longer carry
them), under its ``mediapipe/modules`` folder:

- ``hand_landmark/hand_landmark_full.tflite``: 21 hand landmarks in a 224 x 224 crop;
- ``palm_detection/palm_detection_full.tflite``: palms in a whole frame (192 x 192, letterboxed);
- ``holistic_landmark/hand_recrop.tflite``: MediaPipe Holistic's re-crop model, which turns the rough
  hand region taken from the body's wrist, index and pinky landmarks into a tight one (two alignment
  points: the crop's centre and a point giving its scale and turn).

The conversion is :mod:`tools.blazepose_onnx`'s, reused as it is (densify sparse weights, tf2onnx at
opset 17, weights back to float16 behind Cast nodes, refusing any weight not exactly float16), run
once, by hand, in the same throw-away environment; the results are committed:

    python3.11 -m venv /tmp/convert
    /tmp/convert/bin/pip install tf2onnx==1.16.1 tensorflow-cpu==2.15.1 "numpy<2" onnx==1.16.2
    /tmp/convert/bin/pip download --no-deps -d /tmp/convert/wheel mediapipe==0.10.21
    (cd /tmp/convert/wheel && unzip -q -o mediapipe-*.whl "mediapipe/modules/hand_*" \\
        "mediapipe/modules/palm_*" "mediapipe/modules/holistic_*")
    /tmp/convert/bin/python tools/hand_onnx.py /tmp/convert/wheel/mediapipe/modules

With ``--check VIDEO JSON`` (needs ``/tmp/convert/bin/pip install onnxruntime==1.19.2
opencv-python-headless==4.10.0.84``) each ONNX model is run beside TFLite's interpreter on real
crops: hand crops around the TensorFlow.js hand keypoints stored in ``JSON`` (per frame, hands of 21
[x px, y px, z]) for the landmark and re-crop models, whole letterboxed frames for the palm detector;
the largest absolute difference of each output is printed. For example, with the corpus's
``../shared/media/real/hands/asl_hand_portrait.mp4`` and ``asl_hand_portrait.hands_tfjs.json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from blazepose_onnx import MODELS, convert, densified, prune_and_halve  # tools/blazepose_onnx.py

#: (source under the wheel's ``modules`` folder, target, weights stored as float16). The landmark model
#: and palm detector store float16 weights (behind TFLite DEQUANTIZE ops) and are halved as BlazePose's
#: are; the re-crop model (124 kB) stores float32 weights, which stay float32. All outputs are kept.
#: Landmark model: landmarks (1, 63) (x, y, z per landmark, crop px), hand presence (1, 1) (a
#: probability), handedness (1, 1) (the probability of MediaPipe's label "Left"), world landmarks
#: (1, 63) metres. Palm detector: boxes and 7 keypoints (1, 2016, 18), score logits (1, 2016, 1).
#: Re-crop model: two alignment points (1, 1, 1, 4), crop px.
CONVERSIONS = [
    ("hand_landmark/hand_landmark_full.tflite", "hand_landmark_full.onnx", True),
    ("palm_detection/palm_detection_full.tflite", "palm_detection_full.onnx", True),
    ("holistic_landmark/hand_recrop.tflite", "hand_recrop.onnx", False),
]


def _crops(video: Path, keypoints: Path, side: int, count: int = 6) -> np.ndarray:
    """(count, side, side, 3) float32 RGB in [0, 1]: axis-aligned squares twice the size of the hand's
    keypoint box, around the hands of ``count`` frames spread over ``video``."""
    import json

    import cv2

    frames = json.loads(keypoints.read_text())
    reader = cv2.VideoCapture(str(video))
    images = []
    for index in np.linspace(0, len(frames) - 1, count).astype(int):
        reader.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, image = reader.read()
        if not ok or not frames[index]:
            continue
        hand = np.array(frames[index], dtype=np.float64).reshape(-1, 21, 3)[0, :, :2]  # the first hand
        centre, half = (hand.min(0) + hand.max(0)) / 2, float(np.ptp(hand, axis=0).max())
        matrix = np.array([[2 * half / side, 0, centre[0] - half], [0, 2 * half / side, centre[1] - half]])
        patch = cv2.warpAffine(image, matrix, (side, side), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REPLICATE)
        images.append(cv2.cvtColor(patch, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0)
    return np.array(images)


def _frames(video: Path, side: int, count: int = 6) -> np.ndarray:
    """(count, side, side, 3) float32 RGB in [0, 1]: whole frames letterboxed (black borders), as the
    palm detector takes them."""
    import cv2

    reader = cv2.VideoCapture(str(video))
    total = int(reader.get(cv2.CAP_PROP_FRAME_COUNT))
    images = []
    for index in np.linspace(0, max(total - 2, 0), count).astype(int):
        reader.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, image = reader.read()
        if not ok:
            continue
        height, width = image.shape[:2]
        scale = side / max(height, width)
        matrix = np.array([[scale, 0, (side - scale * width) / 2], [0, scale, (side - scale * height) / 2]])
        small = cv2.warpAffine(image, matrix, (side, side), flags=cv2.INTER_LINEAR, borderValue=0)
        images.append(cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32) / 255)
    return np.array(images)


def check(modules: Path, models: Path, video: Path, keypoints: Path) -> None:
    """Print, per model and output, the largest |ONNX - TFLite| over real inputs (see the docstring)."""
    import onnxruntime as ort
    import tensorflow as tf

    for source, target, _ in CONVERSIONS:
        interpreter = tf.lite.Interpreter(model_path=str(modules / source))
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        side = int(detail["shape"][1])
        inputs = _frames(video, side) if "palm" in source else _crops(video, keypoints, side)
        session = ort.InferenceSession(str(models / target), providers=["CPUExecutionProvider"])
        # ONNX outputs keep the TFLite outputs' order and names (Identity, Identity_1, ...).
        names = [output.name for output in session.get_outputs()]
        worst = np.zeros(len(names))
        scale = np.zeros(len(names))
        for image in inputs:
            interpreter.set_tensor(detail["index"], image[None])
            interpreter.invoke()
            theirs = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
            by_name = {d["name"]: value for d, value in zip(interpreter.get_output_details(), theirs)}
            ours = session.run(None, {session.get_inputs()[0].name: image[None]})
            for i, (name, value) in enumerate(zip(names, ours)):
                reference = by_name.get(name, theirs[i])
                worst[i] = max(worst[i], float(np.abs(value.reshape(-1) - reference.reshape(-1)).max()))
                scale[i] = max(scale[i], float(np.abs(reference).max()))
        parts = ", ".join(f"{name} {w:.2g} (of values up to {s:.3g})" for name, w, s in zip(names, worst, scale))
        print(f"{target}: {len(inputs)} real inputs, max |ONNX - TFLite|: {parts}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", type=Path, help="the mediapipe==0.10.21 wheel's mediapipe/modules folder")
    parser.add_argument("--out", type=Path, default=MODELS)
    parser.add_argument("--check", nargs=2, type=Path, metavar=("VIDEO", "JSON"),
                        help="compare the ONNX models with TFLite's interpreter on this video's frames and hand crops")
    parser.add_argument("--check-only", action="store_true", help="skip the conversion, only --check")
    args = parser.parse_args()
    if not args.check_only:
        for source, target, halve in CONVERSIONS:
            with tempfile.TemporaryDirectory() as folder:
                converted = Path(folder) / "converted.onnx"
                convert(densified(args.modules / source), converted)
                if halve:
                    prune_and_halve(converted, args.out / target, None)
                else:
                    import onnx

                    model = onnx.load(str(converted))
                    onnx.checker.check_model(model)
                    onnx.save(model, str(args.out / target))
            print(f"wrote {args.out / target} ({(args.out / target).stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
    if args.check:
        check(args.modules, args.out, *args.check)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
