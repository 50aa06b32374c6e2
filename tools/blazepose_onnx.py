"""Make ``posemoe/detect/models/pose_landmark_full.onnx`` from MediaPipe's BlazePose Full landmark model.

The source is ``mediapipe/modules/pose_landmark/pose_landmark_full.tflite`` from the ``mediapipe==0.10.21``
wheel (Apache-2.0, Google). TensorFlow is needed for this conversion only, so it runs once, by hand, in
a throw-away environment, and the result is committed:

    python3.11 -m venv /tmp/convert
    /tmp/convert/bin/pip install tf2onnx==1.16.1 tensorflow-cpu==2.15.1 "numpy<2" onnx==1.16.2
    /tmp/convert/bin/python tools/blazepose_onnx.py .venv/lib/python3.11/site-packages/mediapipe/modules/pose_landmark/pose_landmark_full.tflite

Three steps:
1. tf2onnx converts the graph (opset 17).
2. The segmentation head is cut away (outputs kept: landmarks, pose flag, heatmap, world landmarks):
   we never use the mask, and its decoder, at the model's full 256 x 256 resolution, is a large share
   of the model's work (``benchmarks/detect.py`` prints the time per call of what ships).
3. Weights are stored as float16, as they are in the .tflite (the script refuses any weight that is
   not exactly float16), behind Cast nodes that ONNX Runtime folds when it loads the model: half the
   file, the same outputs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

OUTPUT = Path(__file__).resolve().parent.parent / "posemoe" / "detect" / "models" / "pose_landmark_full.onnx"
#: The model's outputs we use: landmarks (1, 195), pose flag (1, 1), heatmap (1, 64, 64, 39), world
#: landmarks (1, 117). The fourth TFLite output, the segmentation mask (1, 256, 256, 1), is dropped.
KEEP = ["Identity", "Identity_1", "Identity_3", "Identity_4"]


def convert(tflite: Path, onnx_path: Path) -> None:
    import tensorflow as tf

    def no_interpreter(*args, **kwargs):
        # tf2onnx asks TFLite's interpreter for tensor shapes, which crashes on some MediaPipe models
        # (a segmentation fault in get_tensor_details); the shapes stored in the file are enough.
        raise ValueError("use the shapes stored in the model")

    tf.lite.Interpreter = no_interpreter
    import tf2onnx

    tf2onnx.convert.from_tflite(str(tflite), opset=17, output_path=str(onnx_path))


def prune_and_halve(source: Path, target: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper, utils

    with tempfile.TemporaryDirectory() as folder:
        pruned = Path(folder) / "pruned.onnx"
        model = onnx.load(str(source))
        utils.extract_model(str(source), str(pruned), [model.graph.input[0].name], KEEP)
        model = onnx.load(str(pruned))
    graph = model.graph
    halves, casts = [], []
    for weight in list(graph.initializer):
        array = numpy_helper.to_array(weight)
        if array.dtype == np.float32 and array.size >= 256:
            if not np.array_equal(array.astype(np.float16).astype(np.float32), array):
                raise SystemExit(f"{weight.name} is not exactly float16: storing it as float16 would change the model")
            halves.append(numpy_helper.from_array(array.astype(np.float16), weight.name + "_fp16"))
            casts.append(helper.make_node("Cast", [halves[-1].name], [weight.name], to=TensorProto.FLOAT))
            graph.initializer.remove(weight)
    graph.initializer.extend(halves)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(target))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tflite", type=Path, help="pose_landmark_full.tflite from the mediapipe==0.10.21 wheel")
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        converted = Path(folder) / "converted.onnx"
        convert(args.tflite, converted)
        prune_and_halve(converted, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
