"""Pre-labeling benchmark: CPU inference per frame with a model of YOLOv8n's size, and the
labeler's memory with the model loaded.

    .venv/bin/python benchmarks/inference.py [--rounds 20] [--threads 1 2]

The model is :func:`framesift_dev.onnxmodels.yolov8n_sized` (YOLOv8n's input, output, 3.2 M
parameters and about its 8.7 GFLOPs, random weights: the model's time does not depend on them;
class scores biased low so that, as with a trained model, few anchors reach NMS). Frames
are JPEGs at the sizes the sampler writes (720p, 1080p, 4K; quality 90). Per frame size and
thread count, the median of ``--rounds`` calls of:

- ``model alone``: onnxruntime on a ready input tensor (the baseline, same run);
- ``framesift``: :meth:`OnnxDetector.detect` on the JPEG: decode (reduced by libjpeg's DCT
  scaling to the input's size), letterbox, the model, decoding and NMS;
- ``full decode``: the same preprocessing with the JPEG decoded at full size first, as a
  resize after ``decode_jpeg`` would (the baseline for the reduced decode).

Memory: the labeler's process (the labeler built as the function builds it, manifest vendor),
its peak resident memory after pre-labeling one frame, beside the same without a model.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import simplejpeg
from PIL import Image

from framesift.adapters.onnx import OnnxDetector
from framesift.config import Settings
from framesift.detection import Letterbox, model_input
from framesift_dev.onnxmodels import YOLOV8N_GFLOPS, YOLOV8N_PARAMETERS, yolov8n_sized

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "4K": (3840, 2160)}


def frame_jpeg(width: int, height: int, seed: int = 0) -> bytes:
    """A textured frame (smooth gradients and noise), as a camera's JPEG at quality 90."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, width)[None, :, None]
    y = np.linspace(0, 255, height)[:, None, None]
    pixels = (x * 0.6 + y * 0.4 + rng.normal(0, 12, (height, width, 3))).clip(0, 255)
    out = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(out, "JPEG", quality=90)
    return out.getvalue()


def median_ms(call: Callable[[], object], rounds: int) -> float:
    call()  # warm up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def full_decode_input(data: bytes, side: int) -> np.ndarray:
    pixels = simplejpeg.decode_jpeg(data, colorspace="RGB")
    box = Letterbox(pixels.shape[1], pixels.shape[0], side, side)
    resized = np.asarray(Image.fromarray(pixels).resize(box.resized, Image.Resampling.BILINEAR))
    canvas = np.full((side, side, 3), 114, dtype=np.uint8)
    left, top = box.offset
    canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return canvas.transpose(2, 0, 1)[np.newaxis].astype(np.float32) / 255.0


MEMORY_PROBE = """
import json, sys
from pathlib import Path
from framesift import bootstrap
from framesift.config import Settings
from framesift.messages import KeptFrames, SampledFrame
from framesift.bootstrap import build_adapters
settings = Settings()
adapters = build_adapters(settings)
frame = Path(sys.argv[1]).read_bytes()
adapters.blobs.put("frames", "f.jpg", frame, "image/jpeg")
handler = bootstrap.handler("labeler", adapters, settings)
sampled = SampledFrame(frame_id="f", timestamp_ms=0, bucket="frames", object_name="f.jpg",
                       sha256="0" * 64, phash="0" * 16, sharpness=1.0, brightness=1.0)
handler.handle.__self__.handle(KeptFrames(batch_id="b", collector="c", frames=[sampled]))
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
status = Path("/proc/self/status").read_text().splitlines()
peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"peak_mib": peak / 1024}))
"""


def labeler_peak_mib(model: Path | None, frame: Path, workdir: Path) -> float:
    env = {
        **os.environ,
        "FRAMESIFT_BACKEND": "embedded",
        "FRAMESIFT_WORKDIR": str(workdir),
        "FRAMESIFT_LABELING_VENDOR": "manifest",
        "FRAMESIFT_LABELING_CLASSES": "class0,class1",
        "FRAMESIFT_LOG_LEVEL": "WARNING",
    }
    if model is not None:
        env["FRAMESIFT_MODEL_URI"] = str(model)
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(frame)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        model, parameters, gflops = yolov8n_sized(work / "yolov8n_sized.onnx")
        print(
            f"model: {parameters / 1e6:.2f} M parameters, {gflops:.1f} GFLOPs at 640x640 "
            f"(YOLOv8n: {YOLOV8N_PARAMETERS / 1e6:.1f} M, {YOLOV8N_GFLOPS} GFLOPs); "
            f"{os.cpu_count()} cores; {args.rounds} rounds, medians\n"
        )
        print(
            "| frame | threads | model alone (ms) | framesift detect (ms) | ratio "
            "| full-decode preprocessing (ms) | reduced-decode preprocessing (ms) |"
        )
        print("|---|---|---|---|---|---|---|")
        for threads in args.threads:
            detector = OnnxDetector(
                model.read_bytes(),
                model.name,
                Settings(model_threads=threads, labeling_classes=["class0"]),
            )
            session = detector._session
            for name, (width, height) in SIZES.items():
                data = frame_jpeg(width, height)
                ready, _ = model_input(data, 640, 640)
                alone = median_ms(
                    lambda r=ready, s=session: s.run(None, {"images": r}), args.rounds
                )
                whole = median_ms(lambda d=data, m=detector: m.detect(d), args.rounds)
                full = median_ms(lambda d=data: full_decode_input(d, 640), args.rounds)
                reduced = median_ms(lambda d=data: model_input(d, 640, 640), args.rounds)
                print(
                    f"| {name} | {threads} | {alone:.1f} | {whole:.1f} | {whole / alone:.2f}x "
                    f"| {full:.1f} | {reduced:.1f} ({reduced / full:.2f}x) |"
                )
        frame = work / "frame.jpg"
        frame.write_bytes(frame_jpeg(*SIZES["1080p"]))
        without = labeler_peak_mib(None, frame, work / "without")
        with_model = labeler_peak_mib(model, frame, work / "with")
        print(
            "\n| labeler process (one 1080p frame pre-labeled) | peak resident memory (MiB) |\n"
            "|---|---|\n"
            f"| without a model (baseline) | {without:.0f} |\n"
            f"| with the model | {with_model:.0f} ({with_model / without:.2f}x, "
            f"+{with_model - without:.0f}) |"
        )


if __name__ == "__main__":
    main()
