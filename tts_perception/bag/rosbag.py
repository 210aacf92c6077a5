"""rosbag2 writing and reading with ``rosbags`` (no rosbag2 install needed).

- :class:`BagWriter` writes mcap (default) or sqlite3 bags of Image, CompressedImage, Twist,
  Odometry messages from numpy/plain values, or raw CDR bytes from a live subscription.
- :func:`read_frames` reads any rosbag2 (mcap or sqlite3) and yields :class:`BagFrame` with
  RGB pixels and stamps, for rgb8/bgr8/mono8/rgba8/bgra8 Images and jpeg/png
  CompressedImages.

Topic names: bags written here name topics absolutely (``/camera/image_raw``), as
``ros2 bag record`` does; every reader accepts a topic with or without the leading slash and
matches it against the bag's names either way (older bags used relative names).
"""

from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
import math
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

from tts_perception.common.image_codec import (compressed_msg_to_rgb, encode_compressed,
                                               encode_fields, image_msg_to_array, ImageDecodeError,
                                               to_rgb)
from tts_perception.inference.detection import (DetectionError, Detections,
                                                detections_from_fields)

IMAGE_TYPE = 'sensor_msgs/msg/Image'
COMPRESSED_TYPE = 'sensor_msgs/msg/CompressedImage'
DETECTIONS_TYPE = 'vision_msgs/msg/Detection2DArray'
TWIST_TYPE = 'geometry_msgs/msg/Twist'
ODOM_TYPE = 'nav_msgs/msg/Odometry'


class BagError(RuntimeError):
    """A bag that cannot be opened or read as asked; the text says why."""


def absolute_topic(topic: str) -> str:
    """The absolute spelling of a bag topic name: ``camera/image_raw`` -> ``/camera/image_raw``."""
    return '/' + topic.lstrip('/')


def same_topic(a: str, b: str) -> bool:
    """Two bag topic names are the same with or without the leading slash."""
    return absolute_topic(a) == absolute_topic(b)


def _typestore():
    """Kilted's message types, and vision_msgs' where the package is installed (its .msg
    files, as a ROS workspace has them)."""
    from rosbags.typesys import get_typestore, Stores
    ts = get_typestore(Stores.ROS2_KILTED)
    ts.register(_vision_msgs_types())
    return ts


@lru_cache(maxsize=1)
def _vision_msgs_types() -> dict:
    """vision_msgs' types parsed from the installed package's .msg files (once; none where
    it is not installed)."""
    from rosbags.typesys import get_types_from_msg
    msg_dir = _vision_msgs_dir()
    if msg_dir is None:
        return {}
    return {k: v for f in sorted(msg_dir.glob('*.msg')) for k, v in get_types_from_msg(
        f.read_text(), f'vision_msgs/msg/{f.stem}').items()}


def _vision_msgs_dir() -> Optional[Path]:
    """The installed vision_msgs package's ``msg`` folder, None where it is not installed."""
    try:
        from ament_index_python.packages import (get_package_share_directory,
                                                 PackageNotFoundError)
    except ImportError:
        return None
    try:
        return Path(get_package_share_directory('vision_msgs')) / 'msg'
    except PackageNotFoundError:
        return None


def _stamp(ns: int):
    from rosbags.typesys.stores.ros2_kilted import builtin_interfaces__msg__Time as Time
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def _header(ns: int, frame_id: str):
    from rosbags.typesys.stores.ros2_kilted import std_msgs__msg__Header as Header
    return Header(stamp=_stamp(ns), frame_id=frame_id)


@dataclass
class BagFrame:
    """One image from a bag."""

    topic: str
    stamp_ns: int          # header stamp
    log_time_ns: int       # time it was recorded
    rgb: np.ndarray        # (H, W, 3) uint8
    encoding: str          # original encoding ('jpeg'/'png' for compressed)
    raw: Optional[np.ndarray] = None  # pixels in the original encoding (mono8 labels, etc.)


class BagWriter:
    """Write a rosbag2 with ``rosbags``. Use as a context manager."""

    def __init__(self, path: Union[str, Path], storage: str = 'mcap'):
        from rosbags.rosbag2 import StoragePlugin, Writer
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f'bag output {self.path} already exists; remove it or pick another')
        plugins = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}
        if storage not in plugins:
            raise BagError(f'unknown storage {storage!r}; use mcap or sqlite3')
        self._ts = _typestore()
        self._writer = Writer(self.path, version=9, storage_plugin=plugins[storage])
        self._conns: Dict[str, object] = {}
        self.count = 0

    def __enter__(self) -> 'BagWriter':
        self._writer.open()
        return self

    def __exit__(self, *exc) -> None:
        self._writer.close()

    def _conn(self, topic: str, msgtype: str):
        topic = absolute_topic(topic)
        c = self._conns.get(topic)
        if c is None:
            c = self._writer.add_connection(topic, msgtype, typestore=self._ts)
            self._conns[topic] = c
        elif c.msgtype != msgtype:
            raise BagError(f'topic {topic} already has type {c.msgtype}, not {msgtype}')
        return c

    def write_raw(self, topic: str, msgtype: str, log_time_ns: int, cdr: bytes) -> None:
        """Write already-serialized CDR bytes (e.g. from an rclpy ``raw=True`` subscription)."""
        self._writer.write(self._conn(topic, msgtype), int(log_time_ns), bytes(cdr))
        self.count += 1

    def _write(self, topic: str, msgtype: str, log_time_ns: int, msg) -> None:
        data = self._ts.serialize_cdr(msg, msgtype)
        self.write_raw(topic, msgtype, log_time_ns, data)

    def write_image(self, topic: str, stamp_ns: int, image: np.ndarray, encoding: str = 'rgb8',
                    frame_id: str = 'camera', log_time_ns: Optional[int] = None) -> None:
        """Write an (H, W[, C]) uint8 array as sensor_msgs/Image."""
        from rosbags.typesys.stores.ros2_kilted import sensor_msgs__msg__Image as Image
        h, w, enc, step, data = encode_fields(image, encoding)
        msg = Image(header=_header(stamp_ns, frame_id), height=h, width=w, encoding=enc,
                    is_bigendian=0, step=step, data=np.frombuffer(data, dtype=np.uint8))
        self._write(topic, IMAGE_TYPE, stamp_ns if log_time_ns is None else log_time_ns, msg)

    def write_raw_image(self, topic: str, stamp_ns: int, data: np.ndarray, encoding: str,
                        frame_id: str = 'camera') -> None:
        """Write bytes under any encoding label (rows of ``data``), e.g. to make test bags with
        encodings the readers refuse."""
        from rosbags.typesys.stores.ros2_kilted import sensor_msgs__msg__Image as Image
        h, step = data.shape[0], data.shape[1]
        msg = Image(header=_header(stamp_ns, frame_id), height=h, width=step // 2,
                    encoding=encoding, is_bigendian=0, step=step,
                    data=np.ascontiguousarray(data, np.uint8).reshape(-1))
        self._write(topic, IMAGE_TYPE, stamp_ns, msg)

    def write_compressed(self, topic: str, stamp_ns: int, image_rgb: np.ndarray,
                         fmt: str = 'jpeg', frame_id: str = 'camera') -> None:
        """Write RGB pixels as sensor_msgs/CompressedImage (jpeg or png)."""
        from rosbags.typesys.stores.ros2_kilted import (
            sensor_msgs__msg__CompressedImage as CompressedImage)
        data = encode_compressed(image_rgb, fmt)
        msg = CompressedImage(header=_header(stamp_ns, frame_id), format=fmt,
                              data=np.frombuffer(data, dtype=np.uint8))
        self._write(topic, COMPRESSED_TYPE, stamp_ns, msg)

    def write_twist(self, topic: str, stamp_ns: int, v: float, w: float) -> None:
        """Write a geometry_msgs/Twist (forward speed v, yaw rate w)."""
        from rosbags.typesys.stores.ros2_kilted import (
            geometry_msgs__msg__Twist as Twist, geometry_msgs__msg__Vector3 as Vector3)
        msg = Twist(linear=Vector3(x=float(v), y=0.0, z=0.0),
                    angular=Vector3(x=0.0, y=0.0, z=float(w)))
        self._write(topic, TWIST_TYPE, stamp_ns, msg)

    def write_odom(self, topic: str, stamp_ns: int, x: float, y: float, yaw: float, v: float,
                   w: float) -> None:
        """Write a planar nav_msgs/Odometry."""
        from rosbags.typesys.stores.ros2_kilted import (
            geometry_msgs__msg__Point as Point, geometry_msgs__msg__Pose as Pose,
            geometry_msgs__msg__PoseWithCovariance as PoseCov,
            geometry_msgs__msg__Quaternion as Quat, geometry_msgs__msg__Twist as Twist,
            geometry_msgs__msg__TwistWithCovariance as TwistCov,
            geometry_msgs__msg__Vector3 as Vector3, nav_msgs__msg__Odometry as Odometry)
        pose = Pose(position=Point(x=x, y=y, z=0.0),
                    orientation=Quat(x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2)))
        twist = Twist(linear=Vector3(x=v, y=0.0, z=0.0), angular=Vector3(x=0.0, y=0.0, z=w))
        msg = Odometry(header=_header(stamp_ns, 'odom'), child_frame_id='base_link',
                       pose=PoseCov(pose=pose, covariance=np.zeros(36)),
                       twist=TwistCov(twist=twist, covariance=np.zeros(36)))
        self._write(topic, ODOM_TYPE, stamp_ns, msg)

    def write_detections(self, topic: str, stamp_ns: int, boxes: np.ndarray,
                         classes: np.ndarray, scores: Optional[np.ndarray] = None,
                         frame_id: str = 'camera') -> None:
        """Write boxes [N, 4] (x1, y1, x2, y2, pixels) with class indices as
        vision_msgs/Detection2DArray (score 1 where none is given): a detector's labels."""
        if DETECTIONS_TYPE not in self._ts.types:
            raise BagError('vision_msgs is not installed, so Detection2DArray cannot be '
                           'written; install it (the pip environment builds it in setup)')
        t = self._ts.types
        header = _header(stamp_ns, frame_id)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.ones(len(boxes)) if scores is None else np.asarray(scores, np.float64)
        dets = [_detection(t, header, b, int(c), float(sc))
                for b, c, sc in zip(boxes, np.asarray(classes).reshape(-1), scores)]
        self._write(topic, DETECTIONS_TYPE, stamp_ns,
                    t[DETECTIONS_TYPE](header=header, detections=dets))


def _detection(t, header, box: np.ndarray, cls: int, score: float):
    """One rosbags Detection2D: one hypothesis, the box as centre and size."""
    x1, y1, x2, y2 = (float(v) for v in box)
    hyp = t['vision_msgs/msg/ObjectHypothesisWithPose'](
        hypothesis=t['vision_msgs/msg/ObjectHypothesis'](class_id=str(cls), score=score),
        pose=t['geometry_msgs/msg/PoseWithCovariance'](
            pose=t['geometry_msgs/msg/Pose'](
                position=t['geometry_msgs/msg/Point'](x=0.0, y=0.0, z=0.0),
                orientation=t['geometry_msgs/msg/Quaternion'](x=0.0, y=0.0, z=0.0, w=1.0)),
            covariance=np.zeros(36)))
    centre = t['vision_msgs/msg/Pose2D'](
        position=t['vision_msgs/msg/Point2D'](x=(x1 + x2) / 2, y=(y1 + y2) / 2), theta=0.0)
    return t['vision_msgs/msg/Detection2D'](
        header=header, results=[hyp], id='',
        bbox=t['vision_msgs/msg/BoundingBox2D'](center=centre, size_x=x2 - x1, size_y=y2 - y1))


def read_detections(path: Union[str, Path], topic: str) -> Dict[int, Detections]:
    """A Detection2DArray topic's boxes by header stamp (each box's best hypothesis; a
    class id that is not a class index raises :class:`BagError`)."""
    with _open(path) as (reader, p):
        conns = [c for c in reader.connections if same_topic(c.topic, topic)]
        if not conns or conns[0].msgtype != DETECTIONS_TYPE:
            raise BagError(f'topic {topic} of bag {p} is not a {DETECTIONS_TYPE} topic')
        out = {}
        for conn, _, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            out[int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)] = \
                _frame_boxes(msg, topic)
        return out


def _frame_boxes(msg, topic: str) -> Detections:
    try:
        return detections_from_fields(msg)
    except DetectionError as exc:
        raise BagError(f'{topic}: {exc}') from None


def bag_topics(path: Union[str, Path]) -> Dict[str, str]:
    """Map topic -> message type of a bag."""
    with _open(path) as (reader, _):
        return {c.topic: c.msgtype for c in reader.connections}


def _check_path(path: Union[str, Path]) -> Path:
    p = Path(path)
    if not p.exists():
        raise BagError(f'bag {p} does not exist')
    if p.is_dir() and not (p / 'metadata.yaml').exists():
        raise BagError(f'{p} is a directory without metadata.yaml: not a rosbag2 bag')
    return p


@contextmanager
def _open(path: Union[str, Path]):
    """An open rosbags reader; BagError for a missing or unreadable bag."""
    from rosbags.highlevel import AnyReader
    p = _check_path(path)
    try:
        reader = AnyReader([p], default_typestore=_typestore())
        reader.open()
    except Exception as exc:  # rosbags raises several types for corrupt input
        raise BagError(f'cannot open bag {p}: {exc}') from exc
    try:
        yield reader, p
    finally:
        reader.close()


def _image_connections(reader, p: Path, topics: Optional[Sequence[str]]) -> list:
    """The reader's connections of ``topics`` (default: every image topic), checked."""
    by_topic = {absolute_topic(c.topic): c for c in reader.connections}
    names = sorted(c.topic for c in reader.connections)
    wanted = {absolute_topic(t) for t in topics or ()}
    for t in topics or ():
        c = by_topic.get(absolute_topic(t))
        if c is None:
            raise BagError(f'topic {t} not in bag {p}; topics: {names}')
        if c.msgtype not in (IMAGE_TYPE, COMPRESSED_TYPE):
            raise BagError(f'topic {t} has type {c.msgtype}, not an image')
    conns = [c for c in reader.connections if c.msgtype in (IMAGE_TYPE, COMPRESSED_TYPE)
             and (not topics or absolute_topic(c.topic) in wanted)]
    if not conns:
        raise BagError(f'bag {p} has no image topics; topics: {names}')
    return conns


def read_frames(path: Union[str, Path], topics: Optional[Sequence[str]] = None,
                keep_raw: bool = False) -> Iterator[BagFrame]:
    """Yield image frames from a rosbag2 (mcap or sqlite3), in recorded order.

    ``topics`` defaults to every Image/CompressedImage topic. Raises :class:`BagError` for a
    missing or unreadable bag or a requested topic that is absent or not an image, and
    :class:`ImageDecodeError` for an unsupported encoding.
    """
    with _open(path) as (reader, p):
        for conn, log_ns, raw in reader.messages(
                connections=_image_connections(reader, p, topics)):
            msg = reader.deserialize(raw, conn.msgtype)
            stamp = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
            if conn.msgtype == COMPRESSED_TYPE:
                rgb = compressed_msg_to_rgb(msg)
                yield BagFrame(conn.topic, stamp, log_ns, rgb, str(msg.format))
            else:
                pixels = image_msg_to_array(msg)
                yield BagFrame(conn.topic, stamp, log_ns, to_rgb(pixels, str(msg.encoding)),
                               str(msg.encoding), pixels.copy() if keep_raw else None)


def read_labeled_frames(path: Union[str, Path], image_topic: str, label_topic: str
                        ) -> List[tuple]:
    """Pairs (rgb, labels, stamp_ns) matched by header stamp, for evaluation."""
    images: Dict[int, np.ndarray] = {}
    labels: Dict[int, np.ndarray] = {}
    for f in read_frames(path, [image_topic, label_topic], keep_raw=True):
        if same_topic(f.topic, image_topic):
            images[f.stamp_ns] = f.rgb
        else:
            if f.encoding != 'mono8':
                raise ImageDecodeError(f'label topic {label_topic} must be mono8, '
                                       f'got {f.encoding}')
            labels[f.stamp_ns] = f.raw
    return [(images[s], labels[s], s) for s in sorted(images) if s in labels]


@dataclass
class RawMessage:
    """One recorded message, still serialized (CDR, as rclpy publishes raw bytes)."""

    topic: str
    msgtype: str
    log_time_ns: int
    cdr: bytes


def image_topics(path: Union[str, Path], topics: Optional[Sequence[str]] = None
                 ) -> Dict[str, str]:
    """Image/CompressedImage topics of a bag (all of them, or the ones asked for), checked:
    BagError naming the topic if one is missing, is not an image, or its first message has an
    encoding (Image) or format (CompressedImage) the perception node cannot decode."""
    from tts_perception.common.image_codec import SUPPORTED_ENCODINGS
    with _open(path) as (reader, p):
        out = {}
        for conn in _image_connections(reader, p, topics):
            t = conn.topic
            out[t] = conn.msgtype
            for _, _, raw in reader.messages(connections=[conn]):
                msg = reader.deserialize(raw, conn.msgtype)
                if conn.msgtype == IMAGE_TYPE and \
                        str(msg.encoding).lower() not in SUPPORTED_ENCODINGS:
                    raise BagError(f'topic {t}: image encoding {msg.encoding!r} is not '
                                   f'supported (supported: {sorted(SUPPORTED_ENCODINGS)})')
                if conn.msgtype == COMPRESSED_TYPE and not any(
                        k in str(msg.format).lower() for k in ('jpeg', 'jpg', 'png')):
                    raise BagError(f'topic {t}: CompressedImage format {msg.format!r} is not '
                                   f'supported (jpeg and png are)')
                break
        return out


def read_raw(path: Union[str, Path], topics: Sequence[str]) -> Iterator[RawMessage]:
    """The bag's messages on ``topics`` in recorded order, still serialized; a reader failure
    part way (a corrupt chunk) is a BagError."""
    wanted = {absolute_topic(t) for t in topics}
    with _open(path) as (reader, p):
        conns = [c for c in reader.connections if absolute_topic(c.topic) in wanted]
        try:
            for conn, log_ns, raw in reader.messages(connections=conns):
                yield RawMessage(conn.topic, conn.msgtype, int(log_ns), bytes(raw))
        except Exception as exc:  # rosbags raises several types for corrupt input
            raise BagError(f'reading bag {p} failed: {type(exc).__name__}: {exc}') from exc
