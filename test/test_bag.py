"""Bag writing and reading with rosbags, checked against the independent mcap reader."""

from pathlib import Path

import numpy as np
import pytest

from tts_perception.bag.rosbag import (bag_topics, BagError, BagWriter, read_frames,
                                       read_labeled_frames)
from tts_perception.common.image_codec import ImageDecodeError

pytestmark = pytest.mark.unit


def _images(n=3, h=24, w=32):
    rng = np.random.default_rng(1)
    return [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for _ in range(n)]


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_round_trip_all_encodings(tmp_path, storage):
    imgs = _images()
    out = tmp_path / 'bag'
    with BagWriter(out, storage) as bag:
        for i, img in enumerate(imgs):
            t = (i + 1) * 100_000_000
            bag.write_image('cam/rgb', t, img, 'rgb8')
            bag.write_image('cam/bgr', t, np.ascontiguousarray(img[..., ::-1]), 'bgr8')
            bag.write_image('cam/rgba', t, np.dstack([img, np.zeros(img.shape[:2], np.uint8)]),
                            'rgba8')
            bag.write_image('cam/mono', t, img[..., 1].copy(), 'mono8')
            bag.write_compressed('cam/png', t, img, 'png')
            bag.write_twist('cmd_vel', t, 0.5, 0.1)
    topics = bag_topics(out)
    assert topics['/cmd_vel'] == 'geometry_msgs/msg/Twist'     # absolute, as ros2 bag writes
    assert set(topics) == {'/cam/rgb', '/cam/bgr', '/cam/rgba', '/cam/mono', '/cam/png',
                           '/cmd_vel'}
    frames = list(read_frames(out))
    assert len(frames) == 5 * len(imgs)
    for f in frames:
        i = f.stamp_ns // 100_000_000 - 1
        if f.topic == '/cam/mono':
            np.testing.assert_array_equal(f.rgb[..., 0], imgs[i][..., 1])
        else:
            np.testing.assert_array_equal(f.rgb, imgs[i])


def test_independent_mcap_reader_gets_identical_pixels(sample_bag):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    ours = {f.stamp_ns: f.rgb for f in read_frames(sample_bag, ['camera/image_raw'])}
    assert len(ours) == 80
    mcap_file = next(Path(sample_bag).glob('*.mcap'))
    seen = 0
    with open(mcap_file, 'rb') as fh:
        reader = make_reader(fh, decoder_factories=[DecoderFactory()])
        for _, _, _, msg in reader.iter_decoded_messages(topics=['/camera/image_raw']):
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            px = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width, 3)
            np.testing.assert_array_equal(px, ours[stamp])
            seen += 1
    assert seen == len(ours)


def test_sample_bag_has_labels_matching_images(sample_bag):
    pairs = read_labeled_frames(sample_bag, 'camera/image_raw', 'camera/labels')
    assert len(pairs) == 80
    rgb, labels, _ = pairs[0]
    assert labels.shape == rgb.shape[:2] and labels.dtype == np.uint8
    assert set(np.unique(np.concatenate([p[1].ravel() for p in pairs[::10]]))) == {0, 1, 2}


def test_topics_given_with_or_without_the_leading_slash(tmp_path, sample_bag):
    """A ROS user types /camera/image_raw; older bags named topics relatively: both match."""
    absolute = [f.stamp_ns for f in read_frames(sample_bag, ['/camera/image_raw'])]
    relative = [f.stamp_ns for f in read_frames(sample_bag, ['camera/image_raw'])]
    assert absolute == relative and len(absolute) == 80
    assert len(read_labeled_frames(sample_bag, '/camera/image_raw', 'camera/labels')) == 80
    # a bag with relative names (written without this package's writer)
    from rosbags.rosbag2 import Writer
    from tts_perception.bag.rosbag import _header, _typestore, image_topics, read_raw
    from rosbags.typesys.stores.ros2_kilted import sensor_msgs__msg__Image as Image
    old = tmp_path / 'relative'
    ts = _typestore()
    with Writer(old, version=9) as w:
        conn = w.add_connection('front/image_raw', 'sensor_msgs/msg/Image', typestore=ts)
        msg = Image(header=_header(7, 'cam'), height=1, width=2, encoding='rgb8',
                    is_bigendian=0, step=6, data=np.arange(6, dtype=np.uint8))
        w.write(conn, 7, ts.serialize_cdr(msg, 'sensor_msgs/msg/Image'))
    for name in ('front/image_raw', '/front/image_raw'):
        assert image_topics(old, [name]) == {'front/image_raw': 'sensor_msgs/msg/Image'}
        assert [f.stamp_ns for f in read_frames(old, [name])] == [7]
        assert len(list(read_raw(old, [name]))) == 1


def test_bad_bag_path_and_topic(tmp_path):
    with pytest.raises(BagError, match='does not exist'):
        list(read_frames(tmp_path / 'nope'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(BagError, match='not a rosbag2'):
        list(read_frames(tmp_path / 'empty'))
    out = tmp_path / 'b'
    with BagWriter(out) as bag:
        bag.write_twist('cmd_vel', 1, 0.0, 0.0)
    with pytest.raises(BagError, match='no image topics'):
        list(read_frames(out))
    with pytest.raises(BagError, match='not an image'):
        list(read_frames(out, ['cmd_vel']))
    with pytest.raises(BagError, match='not in bag'):
        list(read_frames(out, ['camera/image_raw']))
    with pytest.raises(BagError, match='already exists'):
        BagWriter(out)


def test_unsupported_encoding_gives_clear_error(tmp_path):
    from rosbags.typesys.stores.ros2_kilted import sensor_msgs__msg__Image as Image
    from tts_perception.bag.rosbag import _header, _typestore
    out = tmp_path / 'yuv'
    with BagWriter(out) as bag:
        msg = Image(header=_header(5, 'cam'), height=2, width=2, encoding='yuv422', is_bigendian=0,
                    step=4, data=np.zeros(8, np.uint8))
        bag.write_raw('cam', 'sensor_msgs/msg/Image', 5,
                      _typestore().serialize_cdr(msg, 'sensor_msgs/msg/Image'))
    with pytest.raises(ImageDecodeError, match="unsupported image encoding 'yuv422'"):
        list(read_frames(out))


def test_a_detectors_labels_are_boxes_on_a_detection2darray_topic(tmp_path):
    """Boxes written as vision_msgs Detection2DArray (the wire format rclpy reads) come back
    as each frame's reference boxes, matched to the frames by header stamp."""
    from rclpy.serialization import deserialize_message
    from vision_msgs.msg import Detection2DArray
    from tts_perception.bag.recordings import read_bag
    from tts_perception.bag.rosbag import read_raw
    path = tmp_path / 'boxes'
    frame = np.zeros((48, 64, 3), np.uint8)
    truth = {100: ([[1, 2, 30, 40], [5, 6, 9, 8]], [0, 2]), 300: (np.zeros((0, 4)), [])}
    with BagWriter(path) as bag:
        for stamp in (100, 200, 300):
            bag.write_image('cam/image_raw', stamp, frame)
        for stamp, (boxes, classes) in truth.items():
            bag.write_detections('cam/boxes', stamp, boxes, classes)
    msg = deserialize_message(next(read_raw(path, ['cam/boxes'])).cdr, Detection2DArray)
    assert msg.header.stamp.nanosec == 100 and msg.detections[1].results[0].hypothesis.class_id \
        == '2' and msg.detections[0].bbox.center.position.x == pytest.approx(15.5)
    frames = read_bag(path, labels_topic='cam/boxes')
    assert frames.stamps_ns.tolist() == [100, 300] and frames.labels is None    # 200: no boxes
    np.testing.assert_allclose(frames.boxes[0].boxes, truth[100][0])
    assert frames.boxes[0].classes.tolist() == [0, 2] and len(frames.boxes[1].classes) == 0
    assert frames.source['labels_topic'] == 'cam/boxes'


def test_a_detection2darray_label_with_a_class_name_is_refused(tmp_path):
    from tts_perception.bag.rosbag import _typestore, DETECTIONS_TYPE, read_detections, read_raw
    with BagWriter(tmp_path / 'index') as bag:
        bag.write_detections('cam/boxes', 1, [[0, 0, 4, 4]], [1])
    ts = _typestore()
    msg = ts.deserialize_cdr(next(read_raw(tmp_path / 'index', ['cam/boxes'])).cdr,
                             DETECTIONS_TYPE)
    msg.detections[0].results[0].hypothesis.class_id = 'person'    # another tool's names
    with BagWriter(tmp_path / 'named') as bag:
        bag.write_raw('cam/boxes', DETECTIONS_TYPE, 1, ts.serialize_cdr(msg, DETECTIONS_TYPE))
    with pytest.raises(BagError, match="class id 'person' is not a class index"):
        read_detections(tmp_path / 'named', 'cam/boxes')
