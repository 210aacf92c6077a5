"""Read a bag's camera frames (and labels) as :class:`~tts_perception.common.frames.Frames`:
one recording, or several split into fit and held-out parts for calibration. Errors name the
bag and the topic (:class:`~tts_perception.bag.rosbag.BagError`). See ``doc/calibration.md``.
"""

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from tts_perception.bag.rosbag import (absolute_topic, bag_topics, BagError, DETECTIONS_TYPE,
                                       image_topics, ImageDecodeError, read_detections,
                                       read_frames, same_topic)
from tts_perception.common.frames import Frames
from tts_perception.common.progress import Progress


def read_bag(bag: Path, image_topic: Optional[str] = None, labels_topic: Optional[str] = None,
             max_frames: int = 0, quiet: bool = False) -> Frames:
    """A bag's frames (optionally with labels: mono8 class ids, or a detector's boxes as
    vision_msgs Detection2DArray) as :class:`Frames`; BagError naming what is wrong (no image
    topic, several and none chosen, a labels topic of another type or that matches no
    frame)."""
    if labels_topic and _is_boxes(bag, labels_topic):
        return _with_boxes(read_bag(bag, image_topic, None, max_frames, quiet), bag,
                           labels_topic)
    topics = image_topics(bag, [image_topic] if image_topic else None)
    if labels_topic:
        topics = {t: m for t, m in topics.items() if not same_topic(t, labels_topic)}
        image_topics(bag, [labels_topic])           # present and an image topic
    if image_topic is None:
        if len(topics) != 1:
            raise BagError(f'bag {bag} has image topics {sorted(topics)}; choose one with '
                           f'--image-topic')
        image_topic = next(iter(topics))
    rgb, stamps, arrivals, labels = [], [], [], {}
    prog = Progress(max_frames or 1, f'read {Path(bag).name}', quiet=quiet or not max_frames)
    want = [image_topic] + ([labels_topic] if labels_topic else [])
    for f in read_frames(bag, want, keep_raw=bool(labels_topic)):
        if same_topic(f.topic, image_topic):
            if max_frames and len(rgb) >= max_frames:
                if not labels_topic:
                    break
                continue
            rgb.append(f.rgb)
            stamps.append(f.stamp_ns)
            arrivals.append(f.log_time_ns)
            prog.update(len(rgb))
        else:
            if f.encoding != 'mono8':
                raise ImageDecodeError(f'labels topic {labels_topic} must be mono8 class ids, '
                                       f'got {f.encoding}')
            labels[f.stamp_ns] = f.raw
    prog.close()
    if not rgb:
        raise BagError(f'bag {bag}: topic {image_topic} has no frames')
    lab = None
    if labels_topic:
        keep = [i for i, s in enumerate(stamps) if s in labels]
        if not keep:
            raise BagError(f'bag {bag}: no message on {labels_topic} has the header stamp of '
                           f'a frame on {image_topic}')
        rgb = [rgb[i] for i in keep]
        stamps, arrivals = [stamps[i] for i in keep], [arrivals[i] for i in keep]
        lab = [labels[s] for s in stamps]
    return Frames(rgb, np.asarray(stamps), lab, None, np.asarray(arrivals),
                  {'bag': str(Path(bag).resolve()), 'image_topic': image_topic,
                   'labels_topic': labels_topic, 'first_stamp_ns': int(stamps[0]),
                   'frames': len(rgb)})


def _is_boxes(bag: Path, topic: str) -> bool:
    types = {absolute_topic(t): m for t, m in bag_topics(bag).items()}
    return types.get(absolute_topic(topic)) == DETECTIONS_TYPE


def _with_boxes(frames: Frames, bag: Path, topic: str) -> Frames:
    """``frames`` that have a message on the boxes ``topic`` with their stamp, with them."""
    boxes = read_detections(bag, topic)
    keep = [i for i, s in enumerate(frames.stamps_ns) if int(s) in boxes]
    if not keep:
        raise BagError(f'bag {bag}: no message on {topic} has the header stamp of a frame on '
                       f'{frames.source["image_topic"]}')
    return Frames([frames.rgb[i] for i in keep], frames.stamps_ns[keep], None, None,
                  frames.arrival_ns[keep], {**frames.source, 'labels_topic': topic,
                                            'first_stamp_ns': int(frames.stamps_ns[keep[0]]),
                                            'frames': len(keep)},
                  [boxes[int(frames.stamps_ns[i])] for i in keep])


def read_recordings(bags: Sequence[Path], fit_fraction: float, image_topic: Optional[str] = None,
                    labels_topic: Optional[str] = None, max_frames: int = 0,
                    quiet: bool = False) -> Tuple[Frames, List[int]]:
    """The frames of one or more recordings for calibrate, and how many of each it fits on: the
    first ``fit_fraction`` of each recording's frames. One bag: its frames in order. Several:
    every recording's fit frames first, in bag order, then their held-out frames, each part
    its own sequence (temporal state restarts), with the recordings listed in the source."""
    parts = [read_bag(b, image_topic, labels_topic, max_frames, quiet) for b in bags]
    if len(parts) == 1:
        return parts[0], [int(round(len(parts[0]) * fit_fraction))]
    shapes = {p.rgb[0].shape for p in parts}
    if len(shapes) > 1:
        raise ValueError(f'the bags\' images differ in size (height, width, channels): '
                         f'{sorted(shapes)}')
    fits = [int(round(len(p) * fit_fraction)) for p in parts]
    pieces = [p.part(0, k) for p, k in zip(parts, fits)] + \
        [p.part(k, len(p)) for p, k in zip(parts, fits) if k < len(p)]
    recordings = [{'bag': p.source['bag'], 'image_topic': p.source['image_topic'],
                   'frames': len(p), 'fit_frames': k,
                   'eval_from_stamp_ns': int(p.stamps_ns[k]) if k < len(p) else None}
                  for p, k in zip(parts, fits)]
    labelled, boxed = parts[0].labels is not None, parts[0].boxes is not None
    return Frames([x for q in pieces for x in q.rgb],
                  np.concatenate([q.stamps_ns for q in pieces]),
                  [x for q in pieces for x in q.labels] if labelled else None,
                  np.concatenate([np.full(len(q), i, np.int64) for i, q in enumerate(pieces)]),
                  np.concatenate([q.arrival_ns for q in pieces]),
                  {**parts[0].source, 'recordings': recordings},
                  [x for q in pieces for x in q.boxes] if boxed else None), fits
