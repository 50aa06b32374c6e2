"""Make BlazePose's two models as ONNX files in ``posemoe/detect/models/`` from MediaPipe's ``.tflite`` files.

The sources are ``mediapipe/modules/pose_detection/pose_detection.tflite`` (the person detector) and
``mediapipe/modules/pose_landmark/pose_landmark_full.tflite`` (the landmark model) from the
``mediapipe==0.10.21`` wheel (Apache-2.0, Google). TensorFlow is needed for this conversion only, so it
runs once, by hand, in a throw-away environment, and the results are committed:

    python3.11 -m venv /tmp/convert
    /tmp/convert/bin/pip install tf2onnx==1.16.1 tensorflow-cpu==2.15.1 "numpy<2" onnx==1.16.2
    /tmp/convert/bin/pip download --no-deps -d /tmp/convert/wheel mediapipe==0.10.21
    (cd /tmp/convert/wheel && unzip -q -o mediapipe-*.whl "mediapipe/modules/pose_*")
    /tmp/convert/bin/python tools/blazepose_onnx.py /tmp/convert/wheel/mediapipe/modules

Steps:
1. The detector stores most of its convolution weights sparse (TFLite ``DENSIFY`` ops, which tf2onnx
   cannot read): TFLite's own interpreter densifies them, and they are written back as plain tensors.
2. tf2onnx converts each graph (opset 17).
3. The landmark model's segmentation head is cut away (outputs kept: landmarks, pose flag, heatmap,
   world landmarks): we never use the mask, and its decoder, at the model's full 256 x 256
   resolution, is a large share of the model's work.
4. Weights are stored as float16, as they are in the .tflite files (the script refuses any weight that
   is not exactly float16), behind Cast nodes that ONNX Runtime folds when it loads the model: half the
   file, the same outputs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

MODELS = Path(__file__).resolve().parent.parent / "posemoe" / "detect" / "models"
#: (source under the wheel's ``modules`` folder, target, outputs kept: None for all).
#: Landmark outputs kept: landmarks (1, 195), pose flag (1, 1), heatmap (1, 64, 64, 39), world
#: landmarks (1, 117); the fourth TFLite output, the segmentation mask (1, 256, 256, 1), is dropped.
#: Detector outputs: boxes and keypoints (1, 2254, 12), scores (1, 2254, 1).
CONVERSIONS = [
    ("pose_detection/pose_detection.tflite", "pose_detection.onnx", None),
    ("pose_landmark/pose_landmark_full.tflite", "pose_landmark_full.onnx", ["Identity", "Identity_1", "Identity_3", "Identity_4"]),
]
DENSIFY = 124  # TFLite's builtin operator code


def densified(tflite: Path) -> bytes:
    """The model with every sparse weight (an input of a DENSIFY op) stored dense and the DENSIFY ops
    removed: their consumers read the dense weight directly."""
    import tensorflow as tf
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(tflite))
    graph = model.subgraphs[0]
    densify = {index for index, code in enumerate(model.operatorCodes)
               if max(code.builtinCode, code.deprecatedBuiltinCode) == DENSIFY}
    ops = [op for op in graph.operators if op.opcodeIndex in densify]
    if not ops:
        return tflite.read_bytes()
    interpreter = tf.lite.Interpreter(model_path=str(tflite), experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    interpreter.invoke()
    replace = {}
    for op in ops:
        sparse, dense = int(op.inputs[0]), int(op.outputs[0])
        tensor = graph.tensors[sparse]
        values = interpreter.get_tensor(dense)
        model.buffers[tensor.buffer].data = np.frombuffer(values.tobytes(), np.uint8)
        tensor.sparsity = None
        replace[dense] = sparse
    graph.operators = [op for op in graph.operators if op.opcodeIndex not in densify]
    for op in graph.operators:
        op.inputs = np.array([replace.get(int(i), int(i)) for i in op.inputs], dtype=np.int32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def convert(tflite: bytes, onnx_path: Path) -> None:
    import tensorflow as tf

    def no_interpreter(*args, **kwargs):
        # tf2onnx asks TFLite's interpreter for tensor shapes, which crashes on some MediaPipe models
        # (a segmentation fault in get_tensor_details); the shapes stored in the file are enough.
        raise ValueError("use the shapes stored in the model")

    interpreter, tf.lite.Interpreter = tf.lite.Interpreter, no_interpreter
    try:
        import tf2onnx

        with tempfile.TemporaryDirectory() as folder:
            source = Path(folder) / "model.tflite"
            source.write_bytes(tflite)
            tf2onnx.convert.from_tflite(str(source), opset=17, output_path=str(onnx_path))
    finally:
        tf.lite.Interpreter = interpreter


def prune_and_halve(source: Path, target: Path, keep: list[str] | None) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper, utils

    with tempfile.TemporaryDirectory() as folder:
        model = onnx.load(str(source))
        if keep is not None:
            pruned = Path(folder) / "pruned.onnx"
            utils.extract_model(str(source), str(pruned), [model.graph.input[0].name], keep)
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
    parser.add_argument("modules", type=Path, help="the mediapipe==0.10.21 wheel's mediapipe/modules folder")
    parser.add_argument("--out", type=Path, default=MODELS)
    args = parser.parse_args()
    for source, target, keep in CONVERSIONS:
        with tempfile.TemporaryDirectory() as folder:
            converted = Path(folder) / "converted.onnx"
            convert(densified(args.modules / source), converted)
            prune_and_halve(converted, args.out / target, keep)
        print(f"wrote {args.out / target} ({(args.out / target).stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
