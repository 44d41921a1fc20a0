"""Reference outputs of the converted NanoDet, for the origin's decode/NMS and inference tests.

Run by scripts/models/convert-nanodet (which has the venv):
    python nanodet_reference.py MODEL.onnx MODELS_DIR TEST_DATA_DIR

Writes TEST_DATA_DIR/astronaut.jpg and MODELS_DIR/nanodet-reference.json with:
* "pattern": the raw outputs at a few cells for a synthetic 416x416 RGB image whose pixels are
  computed by integer arithmetic (identical in Rust), so tract's numbers can be compared with
  onnxruntime's on exactly the same input tensor;
* "astronaut": every cell where some class scores at least CANDIDATE, with its raw scores and box
  values, and the boxes this independent numpy decoding + per-class NMS keeps, so the Rust decoder
  is tested on real model output without depending on JPEG decoders agreeing.

The pre- and post-processing here is written from the model's definition (BGR, mean/std, GFL
distribution decoding with reg_max 10 over strides 8/16/32, centre at (x + 0.5) * stride), not
copied from the Rust code.
"""

import json
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image
from skimage import data

SIZE = 416
STRIDES = (8, 16, 32)
BINS = 11
MEAN = np.array([103.53, 116.28, 123.675], dtype=np.float32)
STD = np.array([57.375, 57.12, 58.395], dtype=np.float32)
SCORE = 0.35
IOU = 0.5
CANDIDATE = 0.2


def pattern():
    y, x, c = np.meshgrid(np.arange(SIZE), np.arange(SIZE), np.arange(3), indexing="ij")
    return ((x * 7 + y * 13 + c * 50 + (x * y) % 97) % 256).astype(np.uint8)


def resize_bilinear(rgb, size):
    """Half-pixel-centre bilinear resize, as the origin does it."""
    h, w, _ = rgb.shape
    src = rgb.astype(np.float32)
    ys = np.clip((np.arange(size) + 0.5) * h / size - 0.5, 0, h - 1)
    xs = np.clip((np.arange(size) + 0.5) * w / size - 0.5, 0, w - 1)
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    wy = (ys - y0)[:, None, None]
    wx = (xs - x0)[None, :, None]
    top = src[y0][:, x0] * (1 - wx) + src[y0][:, x1] * wx
    bottom = src[y1][:, x0] * (1 - wx) + src[y1][:, x1] * wx
    return top * (1 - wy) + bottom * wy


def tensor(rgb_float):
    bgr = rgb_float[:, :, ::-1]
    normalised = (bgr - MEAN) / STD
    return normalised.transpose(2, 0, 1)[None].astype(np.float32)


def outputs(session, input_tensor):
    """Per stride: (scores [cells, 80], boxes [cells, 44]), matched by shape."""
    name = session.get_inputs()[0].name
    result = session.run(None, {name: input_tensor})
    by_shape = {tuple(r.shape[1:]): r[0] for r in result}
    levels = []
    for stride in STRIDES:
        cells = (SIZE // stride) ** 2
        levels.append((by_shape[(cells, 80)], by_shape[(cells, 44)]))
    return levels


def decode(levels):
    found = []
    for stride, (scores, boxes) in zip(STRIDES, levels):
        side = SIZE // stride
        for cell in np.nonzero(scores.max(axis=1) >= SCORE)[0]:
            row, col = divmod(int(cell), side)
            px, py = (col + 0.5) * stride, (row + 0.5) * stride
            bins = boxes[cell].reshape(4, BINS).astype(np.float64)
            p = np.exp(bins - bins.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            d = (p * np.arange(BINS)).sum(axis=1) * stride
            box = [px - d[0], py - d[1], px + d[2], py + d[3]]
            box = [min(max(v / SIZE, 0.0), 1.0) for v in box]
            for cls in np.nonzero(scores[cell] >= SCORE)[0]:
                found.append((int(cls), float(scores[cell][cls]), box))
    return nms(found)


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(found):
    kept = []
    for cls, score, box in sorted(found, key=lambda f: -f[1]):
        if all(k[0] != cls or iou(k[2], box) <= IOU for k in kept):
            kept.append((cls, score, box))
    return [{"class": c, "score": s, "box": b} for c, s, b in kept]


def main():
    model, models_dir, data_dir = sys.argv[1:4]
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])

    levels = outputs(session, tensor(pattern().astype(np.float32)))
    samples = []
    for level, (scores, boxes) in enumerate(levels):
        cells = len(scores)
        for cell in sorted({0, 1, cells // 3, cells // 2, cells - 1}):
            samples.append({
                "level": level,
                "cell": cell,
                "scores": scores[cell].tolist(),
                "boxes": boxes[cell].tolist(),
            })

    Image.fromarray(data.astronaut()).save(f"{data_dir}/astronaut.jpg", quality=90)
    rgb = np.asarray(Image.open(f"{data_dir}/astronaut.jpg").convert("RGB"))
    levels = outputs(session, tensor(resize_bilinear(rgb, SIZE)))
    cells = []
    for level, (scores, boxes) in enumerate(levels):
        for cell in np.nonzero(scores.max(axis=1) >= CANDIDATE)[0]:
            cells.append({
                "level": level,
                "cell": int(cell),
                "scores": scores[cell].tolist(),
                "boxes": boxes[cell].tolist(),
            })
    reference = {
        "size": SIZE,
        "strides": list(STRIDES),
        "score_threshold": SCORE,
        "iou_threshold": IOU,
        "pattern": samples,
        "astronaut": {"cells": cells, "detections": decode(levels)},
    }
    with open(f"{models_dir}/nanodet-reference.json", "w") as out:
        json.dump(reference, out, indent=1)
        out.write("\n")
    print("astronaut:", reference["astronaut"]["detections"])


if __name__ == "__main__":
    main()
