"""vision_msgs in and out: a model's class names as ``LabelInfo``, a frame's boxes as
``Detection2DArray``, and back.

Contract: ``detections_msg`` puts every box of a :class:`Detections` (camera pixels) into one
``Detection2D`` with the image's header, one hypothesis whose ``class_id`` is the class index
as a string (the names are in ``LabelInfo``, as vision_msgs intends) and the box as centre and
size; ``detections_from_msg`` reverses it (a label topic of a bag reads the same way) and
refuses a class id that is not an index. ``LABEL_INFO_QOS`` is reliable and transient local:
a subscriber that joins late still gets the names once. See doc/detection.md.
"""

from typing import Sequence

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from vision_msgs.msg import (Detection2D, Detection2DArray, LabelInfo,
                             ObjectHypothesisWithPose, VisionClass)

from tts_perception.inference.detection import detections_from_fields, Detections

LABEL_INFO_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.TRANSIENT_LOCAL)


def label_info_msg(classes: Sequence[str], header=None, threshold: float = 0.0) -> LabelInfo:
    """The class map of a model: index i -> classes[i]; ``threshold`` is its score threshold."""
    if len(classes) > 65536:
        raise ValueError(f'{len(classes)} classes do not fit LabelInfo\'s uint16 class ids')
    msg = LabelInfo(threshold=float(threshold))
    if header is not None:
        msg.header = header
    msg.class_map = [VisionClass(class_id=i, class_name=str(name))
                     for i, name in enumerate(classes)]
    return msg


def detections_msg(det: Detections, header) -> Detection2DArray:
    """One frame's detections with the image's header (boxes in camera pixels)."""
    out = Detection2DArray(header=header)
    rows = zip(det.boxes.tolist(), det.scores.tolist(), det.classes.tolist())
    for (x1, y1, x2, y2), score, cls in rows:
        d = Detection2D(header=header)
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id = str(int(cls))
        hyp.hypothesis.score = float(score)
        d.results.append(hyp)
        d.bbox.center.position.x = (x1 + x2) / 2.0
        d.bbox.center.position.y = (y1 + y2) / 2.0
        d.bbox.size_x = x2 - x1
        d.bbox.size_y = y2 - y1
        out.detections.append(d)
    return out


def detections_from_msg(msg: Detection2DArray) -> Detections:
    """The best hypothesis of every box; a class id that is not an integer raises
    (:func:`~tts_perception.inference.detection.detections_from_fields`)."""
    return detections_from_fields(msg)
