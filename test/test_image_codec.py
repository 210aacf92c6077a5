"""numpy <-> Image/CompressedImage conversion, on synthetic images."""

import array
from types import SimpleNamespace

import numpy as np
import pytest

from tts_perception.common.image_codec import (check_compressed_fields, check_image_fields,
                                               compressed_msg_to_rgb, compressed_size,
                                               encode_compressed,
                                               fill_image_msg, image_msg_to_rgb, ImageDecodeError)

pytestmark = pytest.mark.unit


def _msg(img, enc):
    return fill_image_msg(SimpleNamespace(), img, enc)


@pytest.mark.parametrize('enc', ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8'])
def test_round_trip_to_rgb(enc):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (7, 11, 3), dtype=np.uint8)
    if enc == 'rgb8':
        src, want = rgb, rgb
    elif enc == 'bgr8':
        src, want = rgb[..., ::-1], rgb
    elif enc == 'rgba8':
        src, want = np.dstack([rgb, np.full((7, 11), 9, np.uint8)]), rgb
    elif enc == 'bgra8':
        src, want = np.dstack([rgb[..., ::-1], np.full((7, 11), 9, np.uint8)]), rgb
    else:
        src = rgb[..., 0]
        want = np.repeat(src[..., None], 3, axis=2)
    out = image_msg_to_rgb(_msg(np.ascontiguousarray(src), enc))
    assert out.shape == (7, 11, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, want)


def test_row_padding_is_respected():
    img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    padded = np.zeros((4, 20), np.uint8)
    padded[:, :15] = img.reshape(4, 15)
    msg = SimpleNamespace(height=4, width=5, encoding='rgb8', step=20, is_bigendian=0,
                          data=padded.tobytes())
    np.testing.assert_array_equal(image_msg_to_rgb(msg), img)


@pytest.mark.parametrize('field,value,text', [
    ('encoding', '16UC1', 'unsupported image encoding'),
    ('step', 3, 'step 3 is smaller'),
    ('data', b'\x00' * 10, r'expected step\*height'),
    ('height', 0, 'empty image'),
])
@pytest.mark.parametrize('check', [image_msg_to_rgb, check_image_fields])
def test_bad_image_gives_specific_error(field, value, text, check):
    """The decoder and the node's header check (no pixel read) refuse the same frames."""
    msg = _msg(np.zeros((4, 5, 3), np.uint8), 'rgb8')
    setattr(msg, field, value)
    with pytest.raises(ImageDecodeError, match=text):
        check(msg)


@pytest.mark.parametrize('wrap', [bytes, lambda b: array.array('B', b),
                                  lambda b: np.frombuffer(b, np.uint8)])
def test_header_check_reads_every_data_type(wrap):
    """rclpy gives array.array, rosbags numpy, tests bytes: the size check counts bytes."""
    msg = _msg(np.zeros((4, 5, 3), np.uint8), 'rgb8')
    msg.data = wrap(bytes(msg.data))
    assert check_image_fields(msg) == (4, 5, 3, 15)
    msg.data = wrap(bytes(59))
    with pytest.raises(ImageDecodeError, match='data has 59 bytes'):
        check_image_fields(msg)


@pytest.mark.parametrize('fmt', ['png', 'jpeg'])
def test_compressed(fmt):
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[:, :12] = (200, 30, 10)
    msg = SimpleNamespace(format=fmt, data=encode_compressed(rgb, fmt))
    out = compressed_msg_to_rgb(msg)
    assert out.shape == rgb.shape
    err = np.abs(out.astype(int) - rgb.astype(int))
    if fmt == 'png':
        assert err.max() == 0
    else:  # lossy: small mean error, channel order kept away from the edge
        assert err.mean() < 4 and np.abs(out[8, 3].astype(int) - (200, 30, 10)).max() < 12


def test_compressed_garbage_and_format():
    with pytest.raises(ImageDecodeError, match='no png or jpeg header'):
        compressed_msg_to_rgb(SimpleNamespace(format='jpeg', data=b'notajpeg'))
    broken = bytearray(encode_compressed(np.zeros((8, 8, 3), np.uint8), 'png'))
    broken[40:] = bytes(len(broken) - 40)                  # a valid header, corrupt pixels
    with pytest.raises(ImageDecodeError, match='not a valid'):
        compressed_msg_to_rgb(SimpleNamespace(format='png', data=bytes(broken)))
    with pytest.raises(ImageDecodeError, match='unsupported CompressedImage format'):
        compressed_msg_to_rgb(SimpleNamespace(format='tiff', data=b'x'))
    for check in (compressed_msg_to_rgb, check_compressed_fields):
        with pytest.raises(ImageDecodeError, match='has no data'):
            check(SimpleNamespace(format='png', data=b''))
    jpeg = encode_compressed(np.zeros((8, 8, 3), np.uint8), 'jpeg')
    check_compressed_fields(SimpleNamespace(format='rgb8; jpeg compressed bgr8', data=jpeg))
    with pytest.raises(ImageDecodeError, match='no png or jpeg header'):
        check_compressed_fields(SimpleNamespace(format='jpeg', data=b'x'))


@pytest.mark.parametrize('fmt', ['png', 'jpeg', 'progressive'])
def test_the_size_of_a_compressed_image_is_read_from_its_header(fmt):
    import cv2
    rgb = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    if fmt == 'progressive':
        ok, buf = cv2.imencode('.jpg', rgb, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
        data = buf.tobytes()
    else:
        data = encode_compressed(rgb, fmt)
    assert compressed_size(data) == (53, 37)
    msg = SimpleNamespace(format='jpeg' if fmt != 'png' else 'png', data=data)
    with pytest.raises(ImageDecodeError, match='more than max_pixels 1000'):
        compressed_msg_to_rgb(msg, max_pixels=1000)
    assert compressed_msg_to_rgb(msg, max_pixels=53 * 37).shape == (37, 53, 3)


def test_a_decompression_bomb_is_refused_without_decoding():
    """A 20000 x 20000 PNG of a few hundred KB: refused by its header, in no time."""
    import struct
    import zlib
    w = h = 20000
    comp = zlib.compressobj(9)
    idat = b''.join(comp.compress(bytes(w + 1)) for _ in range(h)) + comp.flush()

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack(
            '>I', zlib.crc32(kind + data) & 0xFFFFFFFF)
    png = (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 0, 0, 0, 0)) +
           chunk(b'IDAT', idat) + chunk(b'IEND', b''))
    assert len(png) < 1_000_000
    with pytest.raises(ImageDecodeError, match='20000x20000 has more than max_pixels'):
        compressed_msg_to_rgb(SimpleNamespace(format='png', data=png))


def test_a_raw_header_over_the_pixel_limit_is_refused_before_its_data():
    msg = SimpleNamespace(height=5000, width=5000, encoding='rgb8', step=15000, data=b'')
    with pytest.raises(ImageDecodeError, match='more than max_pixels'):
        check_image_fields(msg)
