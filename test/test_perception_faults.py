"""perception_node against bad input and its own failures, in its own process over DDS: a
decompression bomb, an oversized raw frame, frames that are all from the future, a worker that
dies or hangs. The node stays up, says what is wrong on /diagnostics, and answers the next good
frame where it can."""

import struct
import zlib

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from conftest import ROOT
from tts_perception.common.image_codec import encode_compressed, fill_image_msg

pytestmark = pytest.mark.dds
ARGS = ['--autostart', '--ros-args', '--params-file', str(ROOT / 'config' / 'perception.yaml'),
        '-p', 'deadline_ms:=300.0', '-p', 'diagnostics_period:=0.3']
PER = ['-m', 'tts_perception.nodes.perception_node', *ARGS]
FAULTY = [str(ROOT / 'test' / 'fault_nodes.py')]
CAMERA = 'perception_node: /camera/image_raw'


def png_bomb(w: int, h: int) -> bytes:
    """A valid grey PNG of w x h zero pixels: about a thousandth of its decoded size."""
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + \
            struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF)
    comp = zlib.compressobj(9)
    row = bytes(w + 1)                                 # filter byte + pixels
    idat = b''.join(comp.compress(row) for _ in range(h)) + comp.flush()
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 0, 0, 0, 0))
            + chunk(b'IDAT', idat) + chunk(b'IEND', b''))


class Camera:
    """A camera publisher (raw or compressed) and what the node says back."""

    def __init__(self, client, compressed=False):
        self.client, self.compressed = client, compressed
        topic = 'camera/image_raw' + ('/compressed' if compressed else '')
        self.pub = client.node.create_publisher(CompressedImage if compressed else Image,
                                                topic, 10)
        self.segs = client.listen('camera/segmentation', Image)
        self.diags = client.listen('/diagnostics', DiagnosticArray)
        assert client.wait_for(lambda: self.pub.get_subscription_count() > 0, 90)
        self.frame = np.full((120, 160, 3), 90, np.uint8)

    def send(self, data=None, ahead_s=0.0, width=None):
        stamp = self.client.node.get_clock().now().nanoseconds + int(ahead_s * 1e9)
        if self.compressed:
            msg = CompressedImage(format='png', data=data if data is not None else
                                  encode_compressed(self.frame, 'png'))
        else:
            img = self.frame if width is None else np.zeros((120, width, 3), np.uint8)
            msg = fill_image_msg(Image(), img, 'rgb8')
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        self.pub.publish(msg)
        self.client.spin(0.1)

    def status(self):
        st = [s for d in self.diags for s in d.status if s.name == CAMERA]
        return (st[-1].level, st[-1].message, {k.key: k.value for k in st[-1].values}) \
            if st else (None, '', {})

    def answered(self, n_more, tries=100) -> bool:
        n = len(self.segs)
        for _ in range(tries):
            if len(self.segs) >= n + n_more:
                return True
            self.send()
        return False


def _peak_rss_mb(pid: int) -> float:
    with open(f'/proc/{pid}/status') as f:
        line = next(x for x in f if x.startswith('VmHWM:'))
    return int(line.split()[1]) / 1024


def test_a_decompression_bomb_is_dropped_before_decoding(procs, client):
    per = procs.python(*PER, '-p', 'transports:=[compressed]')
    cam = Camera(client, compressed=True)
    assert cam.answered(3)
    before = _peak_rss_mb(per.pid)
    bomb = png_bomb(16384, 16384)                       # 268 MB grey, 805 MB as colour
    assert len(bomb) < 1_000_000
    cam.send(bomb)
    assert cam.answered(2), 'no answer to a good frame after the bomb'
    assert per.poll() is None
    assert client.wait_for(lambda: int(cam.status()[2].get('bad_frames', 0)) == 1, 5)
    assert _peak_rss_mb(per.pid) - before < 100, (before, _peak_rss_mb(per.pid))


def test_a_raw_frame_over_the_pixel_limit_is_a_counted_drop(procs, client):
    procs.python(*PER, '-p', 'max_image_pixels:=20000')
    cam = Camera(client)
    assert cam.answered(2)                             # 160 x 120 = 19200 pixels
    n = len(cam.segs)
    for _ in range(3):
        cam.send(width=200)                            # 24000 pixels
    assert client.wait_for(lambda: int(cam.status()[2].get('bad_frames', 0)) == 3, 5)
    assert len(cam.segs) == n


def test_frames_that_are_all_from_the_future_are_an_error_naming_why(procs, client):
    procs.python(*PER)
    cam = Camera(client)
    for _ in range(40):
        cam.send(ahead_s=10.0)
        level, msg, _ = cam.status()
        if level == DiagnosticStatus.ERROR:
            break
    assert level == DiagnosticStatus.ERROR and 'none was processed' in msg and \
        'future +' in msg, msg
    assert cam.answered(2)                             # good frames again: healthy again
    assert client.wait_for(lambda: cam.status()[0] == DiagnosticStatus.OK, 5), cam.status()


def test_a_dead_worker_is_an_error_and_is_restarted(procs, client):
    procs.python(*FAULTY, 'worker-dies', *ARGS)
    cam = Camera(client)
    seen = []
    for _ in range(100):
        cam.send()
        seen.append(cam.status()[1])
        if 'worker has died' in seen[-1]:
            break
    assert 'worker has died' in seen[-1], seen[-5:]
    assert cam.answered(3), 'frames are not answered after the restart'
    assert int(cam.status()[2]['worker_restarts']) == 1


def test_a_hung_worker_is_an_error(procs, client):
    procs.python(*FAULTY, 'worker-hangs', *ARGS, '-p', 'worker_timeout:=1.0')
    cam = Camera(client)
    for _ in range(100):
        cam.send()
        level, msg, _ = cam.status()
        if 'has not finished a frame' in msg:
            break
    assert level == DiagnosticStatus.ERROR and 'has not finished a frame' in msg, msg
