"""vision_msgs as setup builds them (interfaces/vision_msgs) and the conversions to them."""

import json
import os

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray, LabelInfo

from tts_perception.inference.detection import DetectionError, Detections
from tts_perception.nodes.vision_messages import (detections_from_msg, detections_msg,
                                                  label_info_msg, LABEL_INFO_QOS)

# RIHS01 type hashes of vision_msgs 4.1.1 (the release in Jazzy and Kilted), computed with
# rosidl_generator_type_description from the upstream repository's .msg files
# (github.com/ros-perception/vision_msgs, tag 4.1.1). Equal hashes are what lets our messages
# talk to a robot's vision_msgs (rmw refuses to match topics whose type hashes differ).
UPSTREAM_HASHES = {
    'Detection2DArray': 'RIHS01_214274120007f4a683866481336b70310268cfa107aebe9d594a6acf75bda968',
    'Detection2D': 'RIHS01_0d12b69df5c593b3455b7346fac8205437a7d4bcb09b9e0e0b2dde787ded38ea',
    'BoundingBox2D': 'RIHS01_008eacbb0cf8f26e83795547bed013eec3675485ef386ec056d80eaaf1c1ce2f',
    'ObjectHypothesisWithPose':
        'RIHS01_41c12344c0396c48b81df12467c192d99b2a0eb1463c5c37194e4223251c80bc',
    'LabelInfo': 'RIHS01_3d37df4015cdf660cc851c51897f2acd957e1ca6205ba0a99aebffb9406b0783',
    'VisionClass': 'RIHS01_1e4a11f0fed50b5623cb8ff26ca0e37952a48a9c074d16f804b44e9164c2037a',
}


def _installed_hash(name: str) -> str:
    from ament_index_python.packages import get_package_share_directory
    path = os.path.join(get_package_share_directory('vision_msgs'), 'msg', f'{name}.json')
    with open(path) as f:
        return json.load(f)['type_hashes'][0]['hash_string']


@pytest.mark.parametrize('name', sorted(UPSTREAM_HASHES))
def test_built_types_hash_like_upstream_vision_msgs(name):
    assert _installed_hash(name) == UPSTREAM_HASHES[name]


def _header(sec=12, nanosec=345, frame='cam') -> Header:
    h = Header(frame_id=frame)
    h.stamp.sec, h.stamp.nanosec = sec, nanosec
    return h


def test_detections_round_trip_through_the_wire_format():
    det = Detections(np.array([[10, 20, 50, 80], [0.5, 1.5, 2.5, 3.5]]), np.array([0.9, 0.3]),
                     np.array([2, 0]))
    msg = detections_msg(det, _header())
    wire = deserialize_message(serialize_message(msg), Detection2DArray)
    assert wire.header.stamp.sec == 12 and wire.header.stamp.nanosec == 345
    assert all(d.header.frame_id == 'cam' for d in wire.detections)
    first = wire.detections[0]
    assert (first.bbox.center.position.x, first.bbox.center.position.y) == (30.0, 50.0)
    assert (first.bbox.size_x, first.bbox.size_y) == (40.0, 60.0)
    assert first.results[0].hypothesis.class_id == '2'
    back = detections_from_msg(wire)
    np.testing.assert_allclose(back.boxes, det.boxes, atol=1e-6)
    np.testing.assert_allclose(back.scores, det.scores, atol=1e-6)
    assert back.classes.tolist() == [2, 0]


def test_empty_frame_is_an_empty_array_with_the_header():
    msg = detections_msg(Detections.empty(), _header(sec=3))
    assert msg.header.stamp.sec == 3 and len(msg.detections) == 0
    assert len(detections_from_msg(msg)) == 0


def test_best_hypothesis_wins_and_names_are_refused_with_the_reason():
    msg = detections_msg(Detections(np.array([[0, 0, 4, 4]]), np.array([0.2]), np.array([1])),
                         _header())
    better = type(msg.detections[0].results[0])()
    better.hypothesis.class_id, better.hypothesis.score = '3', 0.8
    msg.detections[0].results.append(better)
    assert detections_from_msg(msg).classes.tolist() == [3]
    msg.detections[0].results[1].hypothesis.class_id = 'person'
    with pytest.raises(DetectionError, match="'person' is not a class index"):
        detections_from_msg(msg)


def test_label_info_maps_indices_to_names_and_is_latched():
    msg = label_info_msg(['background', 'floor', 'obstacle'], _header(), threshold=0.25)
    wire = deserialize_message(serialize_message(msg), LabelInfo)
    assert [(c.class_id, c.class_name) for c in wire.class_map] == [
        (0, 'background'), (1, 'floor'), (2, 'obstacle')]
    assert wire.threshold == pytest.approx(0.25)
    assert LABEL_INFO_QOS.durability.name == 'TRANSIENT_LOCAL'
    assert LABEL_INFO_QOS.reliability.name == 'RELIABLE'
    with pytest.raises(ValueError, match='uint16'):
        label_info_msg([str(i) for i in range(70000)])
