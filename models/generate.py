"""Builds the bundled YOLOv8-format test models from fixed constants.

No training and no learned weights: the graph is a handful of pooling and
arithmetic operators, so its output on a synthetic image of bright squares
can be predicted exactly (see README.md). Two files are written:

- squares-seg.onnx: detection plus mask head (output0 [1,38,8400], output1
  [1,32,160,160]), Ultralytics' `segment` layout;
- squares-det.onnx: the same detector without the mask head (output0
  [1,6,8400]), Ultralytics' `detect` layout.

Running this twice gives byte-identical files.

    python models/generate.py [--out DIR]
"""

import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

VERSION = "1"
SIZE = 640  # S: input side, letterbox pixels.
CELL = 8  # Base grid cell, pixels: the P3 stride.
BASE = SIZE // CELL  # 80 base cells a side.
NUM_MASKS = 32
PROTO_CELL = 4  # Prototype cell, pixels: 640 / 160.
LABELS = ["defect", "scratch"]

# A pixel is bright when the mean of R, G, B (each /255) exceeds this, that
# is when R + G + B >= 460 in 8-bit values. It lies halfway between two
# possible means (459/765 and 460/765), so no 8-bit input sits near it and the
# steep step below is exactly 0 or 1.
BRIGHT_THRESHOLD = 459.5 / 765
STEP_GAIN = 1e4

# Per level: (name, stride in base cells, window side in cells, ring side in
# cells). Windows are centred on the anchor: pad = (window - stride) / 2
# cells. The ring is the window grown by one cell (8 px) on every side.
LEVELS = [
    ("p3", 1, 5, 7),  # stride 8 px, window 40 px, 80x80 anchors
    ("p4", 2, 14, 16),  # stride 16 px, window 112 px, 40x40 anchors
    ("p5", 4, 32, 34),  # stride 32 px, window 256 px, 20x20 anchors
]

SCORE = 0.95  # Class score of an anchor whose window holds one whole rectangle.
MIN_PIXELS = 32  # Gate ramps from 0 at 32 bright pixels to 1 at 64.
MIN_FILL = 0.5  # Bright pixels / box area; ramps to 1 at 0.55 (a backstop only).
SCRATCH_ASPECT = 3.0  # Aspect ramps from defect at 3 to scratch at 4.
ONE = numpy_helper.from_array(np.ones(1, np.float32))  # ConstantOfShape's value.


class Graph:
    """Collects nodes and initializers; names are sequential, so the output
    is deterministic."""

    def __init__(self):
        self.nodes, self.inits, self._count = [], [], 0

    def const(self, value, dtype=np.float32, name=None):
        self._count += 1
        name = name or f"c{self._count}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def op(self, op_type, inputs, outputs=1, name=None, **attrs):
        self._count += 1
        if isinstance(outputs, int):
            outputs = [f"{name or op_type.lower()}_{self._count}_{i}" for i in range(outputs)]
        self.nodes.append(
            helper.make_node(op_type, list(inputs), outputs, name=f"{op_type}_{self._count}", **attrs)
        )
        return outputs[0] if len(outputs) == 1 else outputs

    def clip01(self, x, low, high):
        """Clip((x - low) / (high - low), 0, 1): a ramp from 0 at `low` to 1 at `high`."""
        ramp = self.op("Mul", [self.op("Sub", [x, self.const(low)]), self.const(1.0 / (high - low))])
        return self.op("Clip", [ramp, self.const(0.0), self.const(1.0)])


def build(segment):
    g = Graph()
    f = np.float32
    one, zero, half = g.const(1.0), g.const(0.0), g.const(0.5)

    # 1. Hard 0/1 mask of bright pixels, [1,1,640,640]: R + G + B > 3 T
    # (a MatMul by [1, 1, 1]: much faster in ONNX Runtime than ReduceMean, a
    # 1x1 Conv or Split and Add).
    flat = g.op("Reshape", ["images", g.const([3, SIZE * SIZE], np.int64)])
    total = g.op("MatMul", [g.const(np.ones((1, 3), f)), flat])
    rgb_sum = g.op("Reshape", [total, g.const([1, 1, SIZE, SIZE], np.int64)])
    step = g.op("Mul", [g.op("Sub", [rgb_sum, g.const(3 * BRIGHT_THRESHOLD)]), g.const(STEP_GAIN)])
    bright = g.op("Clip", [step, zero, one], name="bright")

    # 2. Extents per 8x8 cell of the base 80x80 grid: for the bright pixels
    # in the cell, the largest i + 1 (right/bottom edge, exclusive) and the
    # largest 640 - i (640 - the left/top edge), 0 without any. Separable:
    # first whether each column (row) of the cell has a bright pixel, then
    # the largest coordinate among those columns (rows).
    i = np.arange(SIZE, dtype=f)
    cols = g.op("MaxPool", [bright], kernel_shape=[CELL, 1], strides=[CELL, 1])  # [1,1,80,640]
    x_maps = g.op(
        "Concat",
        [
            g.op("Mul", [cols, g.const((i + 1).reshape(1, 1, 1, SIZE))]),
            g.op("Mul", [cols, g.const((SIZE - i).reshape(1, 1, 1, SIZE))]),
        ],
        axis=1,
    )
    rows = g.op("MaxPool", [bright], kernel_shape=[1, CELL], strides=[1, CELL])  # [1,1,640,80]
    y_maps = g.op(
        "Concat",
        [
            g.op("Mul", [rows, g.const((i + 1).reshape(1, 1, SIZE, 1))]),
            g.op("Mul", [rows, g.const((SIZE - i).reshape(1, 1, SIZE, 1))]),
        ],
        axis=1,
    )
    x_ext = g.op("MaxPool", [x_maps], kernel_shape=[1, CELL], strides=[1, CELL])
    y_ext = g.op("MaxPool", [y_maps], kernel_shape=[CELL, 1], strides=[CELL, 1])
    # [1,4,80,80]: right, 640 - left, bottom, 640 - top.
    ext_base = g.op("Concat", [x_ext, y_ext], axis=1)

    # 3. Bright pixel count per base cell. Max and sum both decompose over
    # cells, so the windows below are exact; counts are integers below 2^24,
    # exact in float32 whatever the order of summation.
    frac_base = g.op("AveragePool", [bright], kernel_shape=[CELL, CELL], strides=[CELL, CELL])
    count_base = g.op("Mul", [frac_base, g.const(float(CELL * CELL))])

    levels = []
    for name, stride, window, ring in LEVELS:
        pad, ring_pad = (window - stride) // 2, (ring - stride) // 2
        n = BASE // stride
        # Max and sum are separable: first down the columns, then along rows.
        e = g.op(
            "MaxPool",
            [g.op("MaxPool", [ext_base], kernel_shape=[window, 1], strides=[stride, 1], pads=[pad, 0, pad, 0])],
            kernel_shape=[1, window],
            strides=[1, stride],
            pads=[0, pad, 0, pad],
            name=f"{name}_ext",
        )
        right, left_r, bottom, top_r = g.op("Split", [e], outputs=4, axis=1, name=f"{name}_split")
        x2, y2 = right, bottom
        x1 = g.op("Sub", [g.const(float(SIZE)), left_r])
        y1 = g.op("Sub", [g.const(float(SIZE)), top_r])

        # Columns (rows) of the window holding a bright pixel, counted in
        # pixels: the box's width (height) exactly when the bright pixels
        # span it without a gap, as one solid shape does and two separate
        # shapes do not.
        any_col = g.op("MaxPool", [cols], kernel_shape=[window, 1], strides=[stride, 1], pads=[pad, 0, pad, 0])
        occ_x = g.op(
            "Conv",
            [any_col, g.op("ConstantOfShape", [g.const([1, 1, 1, window * CELL], np.int64)], value=ONE)],
            strides=[1, stride * CELL],
            pads=[0, pad * CELL, 0, pad * CELL],
        )
        any_row = g.op("MaxPool", [rows], kernel_shape=[1, window], strides=[1, stride], pads=[0, pad, 0, pad])
        occ_y = g.op(
            "Conv",
            [any_row, g.op("ConstantOfShape", [g.const([1, 1, window * CELL, 1], np.int64)], value=ONE)],
            strides=[stride * CELL, 1],
            pads=[pad * CELL, 0, pad * CELL, 0],
        )

        def count(side, side_pad):
            """Bright pixels in the side x side cells centred on each anchor:
            a sum pool, as a Conv with a kernel of ones."""
            column = g.op("ConstantOfShape", [g.const([1, 1, side, 1], np.int64)], value=ONE)
            row = g.op("ConstantOfShape", [g.const([1, 1, 1, side], np.int64)], value=ONE)
            down = g.op("Conv", [count_base, column], strides=[stride, 1], pads=[side_pad, 0, side_pad, 0])
            return g.op("Conv", [down, row], strides=[1, stride], pads=[0, side_pad, 0, side_pad])

        cnt, cnt_ring = count(window, pad), count(ring, ring_pad)
        w = g.op("Relu", [g.op("Sub", [x2, x1])])
        h = g.op("Relu", [g.op("Sub", [y2, y1])])
        cx = g.op("Mul", [g.op("Add", [x1, x2]), half])
        cy = g.op("Mul", [g.op("Add", [y1, y2]), half])

        gaps = g.op("Add", [g.op("Sub", [w, occ_x]), g.op("Sub", [h, occ_y])])
        span = g.op("Clip", [g.op("Sub", [one, gaps]), zero, one])
        fill = g.op("Div", [cnt, g.op("Max", [g.op("Mul", [w, h]), one])])
        # Bright pixels in the one-cell ring around the window: any means the
        # window cuts a shape, and the anchor scores 0.
        leak = g.op("Sub", [cnt_ring, cnt])
        whole = g.op("Clip", [g.op("Sub", [one, leak]), zero, one])
        gate = g.op(
            "Mul",
            [
                g.op("Mul", [g.clip01(cnt, MIN_PIXELS, 2 * MIN_PIXELS), g.clip01(fill, MIN_FILL, MIN_FILL + 0.05)]),
                g.op("Mul", [whole, span]),
            ],
        )
        aspect = g.op("Div", [g.op("Max", [w, h]), g.op("Max", [g.op("Min", [w, h]), one])])
        bar = g.clip01(aspect, SCRATCH_ASPECT, SCRATCH_ASPECT + 1)
        score = g.op("Mul", [gate, g.const(SCORE)])
        defect = g.op("Mul", [score, g.op("Sub", [one, bar])])
        scratch = g.op("Mul", [score, bar])

        level = g.op("Concat", [cx, cy, w, h, defect, scratch], axis=1)
        levels.append(g.op("Reshape", [level, g.const([1, 4 + len(LABELS), n * n], np.int64)], name=name))

    anchors = sum((BASE // stride) ** 2 for _, stride, _, _ in LEVELS)  # 8400
    channels = 4 + len(LABELS) + (NUM_MASKS if segment else 0)
    outputs = [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, channels, anchors])]
    if segment:
        det = g.op("Concat", levels, axis=2, name="det")
        # Constant mask coefficients [1, 0, ..., 0]: every mask is proto 0.
        coeff = np.zeros((1, NUM_MASKS, 1), f)
        coeff[0, 0, 0] = 1.0
        coeffs = g.op("Expand", [g.const(coeff), g.const([1, NUM_MASKS, anchors], np.int64)])
        g.op("Concat", [det, coeffs], outputs=["output0"], axis=1)

        # Proto 0: 20 * (bright fraction of each 4x4 cell - 0.5); the others 0.
        frac = g.op("AveragePool", [bright], kernel_shape=[PROTO_CELL] * 2, strides=[PROTO_CELL] * 2)
        proto0 = g.op("Mul", [g.op("Sub", [frac, half]), g.const(20.0)])
        select = np.zeros((1, NUM_MASKS, 1, 1), f)
        select[0, 0, 0, 0] = 1.0
        g.op("Mul", [proto0, g.const(select)], outputs=["output1"])
        side = SIZE // PROTO_CELL
        outputs.append(helper.make_tensor_value_info("output1", TensorProto.FLOAT, [1, NUM_MASKS, side, side]))
    else:
        g.op("Concat", levels, outputs=["output0"], axis=2)

    task = "segment" if segment else "detect"
    graph = helper.make_graph(
        g.nodes,
        f"squares_{task}",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        outputs,
        initializer=g.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17)],
        producer_name="grpc-conformance models/generate.py",
        producer_version=VERSION,
        ir_version=8,
        doc_string="Finds bright solid rectangles on a dark background; see models/README.md.",
    )
    helper.set_model_props(
        model,
        {
            "description": (
                "Synthetic YOLOv8-" + ("seg" if segment else "detect") + " test model: bright solid squares "
                "(class 0 'defect') and bars with aspect >= 4 (class 1 'scratch') on a dark background"
            ),
            "version": VERSION,
            "task": task,
            "stride": "32",
            "batch": "1",
            "imgsz": f"[{SIZE}, {SIZE}]",
            "names": "{" + ", ".join(f"{k}: '{v}'" for k, v in enumerate(LABELS)) + "}",
        },
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="output folder")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for segment, file_name in [(True, "squares-seg.onnx"), (False, "squares-det.onnx")]:
        path = args.out / file_name
        path.write_bytes(build(segment).SerializeToString(deterministic=True))
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
