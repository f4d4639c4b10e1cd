"""inference.InferenceMethods: a YOLOv8-format ONNX model behind gRPC.

Written from proto/inference/inference.proto and proto/inference/README.md
alone, which say how the raw model output becomes a response; this module
follows that algorithm step by step (the step numbers below are the
README's), so that it can serve as the reference the Rust service is held to.
"""

import ast
import io
import math
import time
from pathlib import Path

import grpc
import numpy as np
import onnxruntime
from PIL import Image

from containers import png_is_whole, webp_is_whole

DEFAULT_MODEL = Path(__file__).resolve().parents[3] / "models" / "squares-seg.onnx"
DEFAULT_SIZE = 640  # S for a model whose input size is dynamic.
DEFAULT_CONFIDENCE = 0.25
DEFAULT_IOU = 0.45
DEFAULT_MAX_DETECTIONS = 300
DEFAULT_DEFECT_CLASSES = ("defect", "scratch")
# An image whose header declares more pixels than this is refused before
# anything is allocated for its pixels.
MAX_PIXELS = 40_000_000
PAD_VALUE = 114

FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP"}


class InvalidImage(Exception):
    pass


class TooManyPixels(Exception):
    pass


def sniff_format(data):
    """The Pillow format the signature bytes announce, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def decode_rgb(data):
    """(H, W, 3) uint8 RGB pixels. Raises InvalidImage for anything that is
    not a whole PNG, JPEG or WebP, and TooManyPixels, from the header alone,
    for an image of more than MAX_PIXELS pixels."""
    fmt = sniff_format(data)
    if fmt is None:
        raise InvalidImage("image_bytes is not a PNG, JPEG or WebP image")
    name = FORMATS[fmt]
    try:
        # Image.open reads the header only; pixels are decoded by load().
        # LOAD_TRUNCATED_IMAGES stays off, so a cut file fails to load.
        with Image.open(io.BytesIO(data), formats=[fmt]) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise TooManyPixels(
                    f"the {name} image declares {width}x{height} = {width * height} pixels; "
                    f"the limit is {MAX_PIXELS}"
                )
            if (fmt == "PNG" and not png_is_whole(data)) or (fmt == "WEBP" and not webp_is_whole(data)):
                raise InvalidImage(f"image_bytes is a truncated or corrupt {name} image")
            image.load()
            if image.mode.startswith("I;16"):
                # Pillow's own conversion clips 16-bit grey at 255; scale it.
                grey = np.asarray(image, dtype=np.uint32)
                grey = ((grey * 255 + 32767) // 65535).astype(np.uint8)
                return np.repeat(grey[:, :, None], 3, axis=2)
            rgb = image if image.mode == "RGB" else image.convert("RGB")
            return np.asarray(rgb)
    except Image.DecompressionBombError as error:
        raise TooManyPixels(f"the {name} image declares too many pixels: {error}") from None
    except (TooManyPixels, InvalidImage):
        raise
    except Exception as error:  # Pillow raises many types for bad input.
        raise InvalidImage(f"image_bytes does not decode as {name}: {error}") from None


def letterbox(rgb, size):
    """README "Preprocessing": the (1, 3, S, S) float32 tensor, r, left, top."""
    height, width = rgb.shape[:2]
    r = min(size / width, size / height)
    new_w = max(1, round(width * r))  # Python's round: half to even.
    new_h = max(1, round(height * r))
    left = round((size - new_w) / 2 - 0.1)
    top = round((size - new_h) / 2 - 0.1)
    if (new_w, new_h) != (width, height):
        rgb = np.asarray(Image.fromarray(rgb).resize((new_w, new_h), Image.BILINEAR))
    canvas = np.full((size, size, 3), PAD_VALUE, np.uint8)
    canvas[top : top + new_h, left : left + new_w] = rgb
    tensor = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32)
    tensor /= np.float32(255)
    return tensor, r, left, top


def nms(boxes, scores, classes, iou_threshold, max_detections):
    """README "Postprocessing" step 4, on candidates already sorted by score:
    the indices kept, in order. Class-aware greedy NMS, in float32:
    IoU = inter / ((area_a + area_b) - inter), 0 when the union is 0, and a
    candidate is suppressed when IoU > iou_threshold."""
    threshold = np.float32(iou_threshold)
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    alive = np.ones(len(scores), bool)
    kept = []
    for i in range(len(scores)):
        if len(kept) == max_detections:
            break
        if not alive[i]:
            continue
        kept.append(i)
        rest = np.flatnonzero(alive[i + 1 :]) + i + 1
        rest = rest[classes[rest] == classes[i]]
        if not len(rest):
            continue
        iw = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), np.float32(0))
        ih = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), np.float32(0))
        inter = iw * ih
        union = (areas[i] + areas[rest]) - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(union > 0, inter / union, np.float32(0))
        alive[rest[iou > threshold]] = False
    return np.asarray(kept, np.int64)


def class_map(boxes, classes, logits, r, left, top, size, width, height):
    """README "Segmentation": the (height, width) uint8 class map.
    `boxes` are float32 corners in original pixels, `logits` (n, Mh, Mw),
    both in descending score order; the first detection wins a tie."""
    mask_h, mask_w = logits.shape[1:]
    result = np.zeros((height, width), np.uint8)

    def sample_axis(lo, hi, count, offset, cells):
        """Pixel indices whose centre c + 0.5 is in [lo, hi), and for each the
        two prototype cells and the weight of the second one."""
        first = max(0, math.ceil(float(lo) - 0.5))
        last = min(count, math.ceil(float(hi) - 0.5))  # exclusive
        pixels = np.arange(first, last)
        grid = ((pixels + 0.5) * r + offset) * cells / size - 0.5
        grid = np.clip(grid, 0, cells - 1)
        low = np.floor(grid).astype(np.int64)
        high = np.minimum(low + 1, cells - 1)
        return first, last, low, high, grid - low

    # Lowest score first, so that higher-scoring detections paint over it.
    for index in range(len(boxes) - 1, -1, -1):
        x1, y1, x2, y2 = boxes[index]
        col0, col1, u0, u1, fx = sample_axis(x1, x2, width, left, mask_w)
        row0, row1, v0, v1, fy = sample_axis(y1, y2, height, top, mask_h)
        if col0 >= col1 or row0 >= row1:
            continue
        grid = logits[index].astype(np.float64)
        upper, lower = grid[v0], grid[v1]  # (rows, Mw)
        # Horizontal first, then vertical.
        along_upper = upper[:, u0] * (1 - fx) + upper[:, u1] * fx
        along_lower = lower[:, u0] * (1 - fx) + lower[:, u1] * fx
        value = along_upper * (1 - fy)[:, None] + along_lower * fy[:, None]
        window = result[row0:row1, col0:col1]
        window[value > 0] = classes[index] + 1
    return result


def run_length(values):
    """Row-major (value, length) pairs of a flattened map; runs continue
    from the end of one row into the next."""
    flat = values.ravel()
    starts = np.concatenate(([0], np.flatnonzero(flat[1:] != flat[:-1]) + 1))
    lengths = np.diff(np.append(starts, flat.size))
    return np.stack([flat[starts].astype(np.int64), lengths], axis=1).ravel().tolist()


def parse_names(text):
    """The labels of Ultralytics' `names` metadata, `{0: 'defect', ...}`."""
    try:
        names = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return {}
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    if not isinstance(names, dict):
        return {}
    return {int(k): str(v) for k, v in names.items() if isinstance(k, int)}


def elapsed_us(start):
    return max(0, (time.perf_counter_ns() - start) // 1000)


class InferenceMethods:
    """inference.InferenceMethods on one shared ONNX Runtime session (its
    `run` is thread-safe), on the CPU execution provider."""

    def __init__(self, pb, model=DEFAULT_MODEL, intra_threads=0, defect_classes=DEFAULT_DEFECT_CLASSES):
        self._pb = pb
        self._model = str(model)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = intra_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            self._model, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._provider = self._session.get_providers()[0]

        inputs = self._session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ValueError(f"{model}: expected one NCHW input, found {[i.shape for i in inputs]}")
        self._input_name = inputs[0].name
        dims = inputs[0].shape
        height, width = (d if isinstance(d, int) and d > 0 else None for d in dims[2:])
        if height != width and None not in (height, width):
            raise ValueError(f"{model}: the input must be square, found {dims}")
        self._size = height or width or DEFAULT_SIZE
        self._input_shape = [1, 3, self._size, self._size]

        outputs = self._session.get_outputs()
        detections = [o for o in outputs if len(o.shape) == 3]
        protos = [o for o in outputs if len(o.shape) == 4]
        if len(detections) != 1 or len(protos) > 1:
            raise ValueError(f"{model}: expected a [1, 4+nc+nm, N] output and at most one mask output")
        self._det_name = detections[0].name
        self._proto_name = protos[0].name if protos else None
        self._output_names = [self._det_name] + ([self._proto_name] if protos else [])
        num_masks = protos[0].shape[1] if protos else 0
        channels = detections[0].shape[1]
        if not isinstance(num_masks, int) or not isinstance(channels, int) or channels - 4 - num_masks < 1:
            raise ValueError(f"{model}: cannot tell the class count from {detections[0].shape}")
        self._num_masks = num_masks
        self._num_classes = channels - 4 - num_masks

        names = parse_names(self._session.get_modelmeta().custom_metadata_map.get("names", ""))
        self._labels = [names.get(k, f"class{k}") for k in range(self._num_classes)]
        self._defect_classes = list(defect_classes)
        wanted = set(self._defect_classes)
        self._is_defect = np.array([label in wanted for label in self._labels], bool)

    @property
    def has_segmentation(self):
        return self._proto_name is not None

    def ModelInfo(self, request, context):
        return self._pb.ModelInfoResponse(
            input_shape=self._input_shape,
            labels=self._labels,
            execution_provider=self._provider,
            onnxruntime_version=onnxruntime.__version__,
            has_segmentation=self.has_segmentation,
            defect_classes=self._defect_classes,
            model=self._model,
        )

    def Infer(self, request, context):
        confidence = self._threshold(context, "confidence_threshold", request.confidence_threshold, DEFAULT_CONFIDENCE)
        iou = self._threshold(context, "iou_threshold", request.iou_threshold, DEFAULT_IOU)
        max_detections = request.max_detections or DEFAULT_MAX_DETECTIONS
        if not request.image_bytes:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "image_bytes is empty")
        if request.return_segmentation and not self.has_segmentation:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"return_segmentation needs a model with a mask head; {self._model} has none",
            )

        start = time.perf_counter_ns()
        try:
            rgb = decode_rgb(request.image_bytes)
        except TooManyPixels as error:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(error))
        except InvalidImage as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        decode_us = elapsed_us(start)
        height, width = rgb.shape[:2]

        start = time.perf_counter_ns()
        tensor, r, left, top = letterbox(rgb, self._size)
        preprocess_us = elapsed_us(start)

        start = time.perf_counter_ns()
        outputs = self._session.run(self._output_names, {self._input_name: tensor})
        inference_us = elapsed_us(start)

        start = time.perf_counter_ns()
        response = self._postprocess(
            outputs, confidence, iou, max_detections, request.return_segmentation, r, left, top, width, height
        )
        response.timing.decode_us = decode_us
        response.timing.preprocess_us = preprocess_us
        response.timing.inference_us = inference_us
        response.timing.postprocess_us = elapsed_us(start)
        return response

    def _threshold(self, context, name, value, default):
        if math.isnan(value) or not 0.0 <= value <= 1.0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{name} must be in [0, 1], got {value}")
        return value or default

    def _postprocess(self, outputs, confidence, iou, max_detections, segment, r, left, top, width, height):
        pb = self._pb
        prediction = outputs[0][0]  # (4 + nc + nm, N)
        nc = self._num_classes

        # 1. Best class per anchor; drop scores below the threshold.
        class_scores = prediction[4 : 4 + nc]
        classes = np.argmax(class_scores, axis=0)
        scores = class_scores[classes, np.arange(class_scores.shape[1])]
        candidates = np.flatnonzero(scores >= np.float32(confidence))
        # 3. Descending score, ties in anchor order (stable sort).
        candidates = candidates[np.argsort(-scores[candidates], kind="stable")]
        # 2. Corners in letterbox pixels.
        cx, cy, w, h = prediction[:4, candidates]
        half_w, half_h = w / np.float32(2), h / np.float32(2)
        corners = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
        # 4. Class-aware greedy NMS.
        kept = nms(corners, scores[candidates], classes[candidates], iou, max_detections)
        anchors = candidates[kept]
        # 5. Back to the original image, clipped.
        boxes = corners[kept].astype(np.float64)
        boxes[:, [0, 2]] = np.clip((boxes[:, [0, 2]] - left) / r, 0, width)
        boxes[:, [1, 3]] = np.clip((boxes[:, [1, 3]] - top) / r, 0, height)
        boxes = boxes.astype(np.float32)
        kept_scores = scores[anchors]
        kept_classes = classes[anchors]

        response = pb.InferResponse(image_width=width, image_height=height)
        response.extra["model"] = self._model
        response.extra["execution_provider"] = self._provider
        image_area = float(width) * float(height)
        for (x1, y1, x2, y2), score, class_id in zip(boxes.tolist(), kept_scores.tolist(), kept_classes.tolist()):
            label = self._labels[class_id]
            box = pb.BoundingBox(x1=x1, y1=y1, x2=x2, y2=y2, score=score, class_id=class_id, label=label)
            response.boxes.append(box)
            # 6. Defects: the kept boxes of a defect class, same order.
            if self._is_defect[class_id]:
                area = (x2 - x1) * (y2 - y1) / image_area
                response.defects.append(pb.Defect(kind=label, score=score, box=box, area_fraction=area))

        if segment:
            protos = outputs[1][0]  # (nm, Mh, Mw)
            coeffs = prediction[4 + nc :, anchors].T  # (n, nm)
            logits = (coeffs @ protos.reshape(protos.shape[0], -1)).reshape(len(anchors), *protos.shape[1:])
            labels = class_map(boxes, kept_classes, logits, r, left, top, self._size, width, height)
            response.segmentation.width = width
            response.segmentation.height = height
            response.segmentation.rle.extend(run_length(labels))
        return response
