"""What the perception node publishes for a camera, by the model's task: one class per task
with the same three calls, so the node holds no task branch.

Every task: ``label_info`` (vision_msgs ``LabelInfo``, transient local: the class names; a
detector's score threshold). Segmentation: ``segmentation`` (mono8 class ids) and, when asked
and watched, ``segmentation_overlay``. Detection: ``detections`` (vision_msgs
``Detection2DArray``, boxes in camera pixels) and, when asked and watched,
``detections_overlay``. Every output carries the camera image's header. Topics:
``doc/index.md``.
"""

from typing import Any, Callable, Dict

import cv2
import numpy as np
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray, LabelInfo

from tts_perception.inference.detection import Detections
from tts_perception.nodes.ros_util import image_msg, output_topic
from tts_perception.nodes.vision_messages import detections_msg, LABEL_INFO_QOS, label_info_msg
from tts_perception.tasks import Task

PALETTE = np.array([[40, 40, 40], [40, 200, 60], [230, 40, 40]], np.uint8)


class _Outputs:
    """One camera's publishers for one task (created at configure, destroyed at cleanup)."""

    kind, msg_type = '', None

    def __init__(self, node, resolved: str, task: Task):
        self.node, self.task = node, task
        self.out = node.create_lifecycle_publisher(self.msg_type,
                                                   output_topic(resolved, self.kind), 10)
        self.overlay = node.create_lifecycle_publisher(
            Image, output_topic(resolved, f'{self.kind}_overlay'), 2)
        self.label_info = node.create_lifecycle_publisher(
            LabelInfo, output_topic(resolved, 'label_info'), LABEL_INFO_QOS)

    def publish_label_info(self, header, threshold: float = 0.0) -> None:
        """The class names, once per activation (latched for late subscribers)."""
        self.label_info.publish(label_info_msg(self.task.model.classes, header, threshold))

    def publish(self, output: Any, rgb: np.ndarray, header, overlay: bool) -> None:
        """One frame's output; its overlay only when ``overlay`` and someone listens."""
        self.out.publish(self._message(output, header))
        if overlay and self.overlay.get_subscription_count() > 0:
            self.overlay.publish(image_msg(self._draw(output, rgb), 'rgb8', header))

    def destroy(self) -> None:
        for pub in (self.out, self.overlay, self.label_info):
            self.node.destroy_lifecycle_publisher(pub)

    def _message(self, output: Any, header):
        raise NotImplementedError

    def _draw(self, output: Any, rgb: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class SegmentationOutputs(_Outputs):
    kind, msg_type = 'segmentation', Image

    def _message(self, labels: np.ndarray, header) -> Image:
        return image_msg(labels, 'mono8', header)

    def _draw(self, labels: np.ndarray, rgb: np.ndarray) -> np.ndarray:
        return (0.5 * rgb + 0.5 * PALETTE[np.minimum(labels, len(PALETTE) - 1)]).astype(
            np.uint8)


class DetectionOutputs(_Outputs):
    kind, msg_type = 'detections', Detection2DArray

    def publish_label_info(self, header, threshold: float = 0.0) -> None:
        super().publish_label_info(header, self.task.model.detector.score_threshold)

    def _message(self, det: Detections, header) -> Detection2DArray:
        return detections_msg(det, header)

    def _draw(self, det: Detections, rgb: np.ndarray) -> np.ndarray:
        out = np.ascontiguousarray(rgb).copy()
        for (x1, y1, x2, y2), c in zip(det.boxes.astype(int).tolist(), det.classes.tolist()):
            colour = tuple(int(v) for v in PALETTE[1 + c % (len(PALETTE) - 1)])
            cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
        return out


OUTPUTS: Dict[str, Callable[..., _Outputs]] = {'segmentation': SegmentationOutputs,
                                               'detection': DetectionOutputs}


def outputs_for(node, resolved: str, task: Task) -> _Outputs:
    """The publishers of ``task``'s outputs next to the camera topic ``resolved``."""
    return OUTPUTS[task.name](node, resolved, task)
