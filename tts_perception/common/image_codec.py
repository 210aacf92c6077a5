"""numpy <-> sensor_msgs/Image and CompressedImage conversion (no cv_bridge needed).

Works on any object with the message's fields, so it serves rclpy messages and ``rosbags``
messages alike. Every decoder validates sizes and encodings and raises
:class:`ImageDecodeError` (a ``ValueError``) with a specific reason instead of returning a
silently wrong image.
"""

import struct
from typing import Any, Optional, Tuple

import numpy as np

DEFAULT_MAX_PIXELS = 4096 * 4096     # larger images are refused before their pixels are read

# encoding -> (channels, order that gives RGB(A))
SUPPORTED_ENCODINGS = {
    'rgb8': 3, 'bgr8': 3, 'mono8': 1, 'rgba8': 4, 'bgra8': 4,
}


class ImageDecodeError(ValueError):
    """An image message that cannot be turned into pixels; the text says why."""


def encode_fields(image: np.ndarray, encoding: str = 'rgb8') -> Tuple[int, int, str, int, bytes]:
    """(height, width, encoding, step, data) for an (H, W[, C]) uint8 array."""
    if encoding not in SUPPORTED_ENCODINGS:
        raise ImageDecodeError(f'unsupported encoding {encoding!r}; '
                               f'supported: {sorted(SUPPORTED_ENCODINGS)}')
    if image.dtype != np.uint8:
        raise ImageDecodeError(f'image dtype must be uint8, got {image.dtype}')
    ch = SUPPORTED_ENCODINGS[encoding]
    if (ch == 1 and image.ndim != 2) or (ch > 1 and (image.ndim != 3 or image.shape[2] != ch)):
        raise ImageDecodeError(f'array shape {image.shape} does not match encoding {encoding}')
    h, w = image.shape[:2]
    return h, w, encoding, w * ch, np.ascontiguousarray(image).tobytes()


def fill_image_msg(msg: Any, image: np.ndarray, encoding: str = 'rgb8') -> Any:
    """Fill a sensor_msgs/Image (rclpy or rosbags) from an array; returns ``msg``."""
    h, w, enc, step, data = encode_fields(image, encoding)
    msg.height, msg.width, msg.encoding, msg.step, msg.is_bigendian = h, w, enc, step, 0
    msg.data = data if not isinstance(getattr(msg, 'data', None), np.ndarray) else \
        np.frombuffer(data, dtype=np.uint8)
    return msg


def _raw_buffer(data: Any) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data.view(np.uint8).reshape(-1)
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(data, dtype=np.uint8)
    # rclpy gives array.array('B') for uint8[]
    return np.frombuffer(memoryview(data).cast('B'), dtype=np.uint8)


def _check_pixels(w: int, h: int, max_pixels: int) -> None:
    if w * h > max_pixels:
        raise ImageDecodeError(f'image {w}x{h} has more than max_pixels {max_pixels}')


def check_image_fields(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS
                       ) -> Tuple[int, int, int, int]:
    """(height, width, channels, step) of a sensor_msgs/Image whose encoding, sizes and data
    length are consistent and that has at most ``max_pixels`` pixels; raises
    :class:`ImageDecodeError` otherwise. Reads no pixel, so it is cheap enough for a
    subscription callback."""
    enc = str(msg.encoding).lower()
    if enc not in SUPPORTED_ENCODINGS:
        raise ImageDecodeError(f'unsupported image encoding {msg.encoding!r}; '
                               f'supported: {sorted(SUPPORTED_ENCODINGS)}')
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    ch = SUPPORTED_ENCODINGS[enc]
    if h <= 0 or w <= 0:
        raise ImageDecodeError(f'empty image {w}x{h}')
    _check_pixels(w, h, max_pixels)
    if step < w * ch:
        raise ImageDecodeError(f'step {step} is smaller than width*channels {w * ch}')
    size = msg.data.nbytes if isinstance(msg.data, np.ndarray) else len(msg.data)
    if size < step * h:
        raise ImageDecodeError(f'data has {size} bytes, expected step*height = {step * h}')
    return h, w, ch, step


_PNG = b'\x89PNG\r\n\x1a\n'
# JPEG start-of-frame markers (every SOFn but DHT 0xC4, JPG 0xC8 and DAC 0xCC)
_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(head: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) from a JPEG's frame header, walking the marker segments."""
    i = 2
    while i + 9 <= len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker == 0xFF:                    # fill byte
            i += 1
            continue
        if marker in _SOF:
            h, w = struct.unpack('>HH', head[i + 5:i + 9])
            return w, h
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:   # no length
            i += 2
            continue
        i += 2 + struct.unpack('>H', head[i + 2:i + 4])[0]
    return None


def compressed_size(data: Any) -> Tuple[int, int]:
    """(width, height) that a png or jpeg declares in its header, read before any decoding;
    :class:`ImageDecodeError` when the header has none."""
    head = bytes(memoryview(data)[:1 << 16]) if not isinstance(data, np.ndarray) else \
        data[:1 << 16].tobytes()
    if head.startswith(_PNG) and head[12:16] == b'IHDR':
        return struct.unpack('>II', head[16:24])
    if head.startswith(b'\xff\xd8'):
        size = _jpeg_size(head)
        if size is not None:
            return size
    raise ImageDecodeError('CompressedImage data has no png or jpeg header with a size')


def check_compressed_fields(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Raises :class:`ImageDecodeError` for a CompressedImage whose format is not jpeg or png,
    that has no data, or whose header declares more than ``max_pixels`` pixels (a small file
    can decode to gigabytes). Decodes nothing."""
    fmt = str(msg.format).lower()
    if not any(k in fmt for k in ('jpeg', 'jpg', 'png')):
        raise ImageDecodeError(f'unsupported CompressedImage format {msg.format!r} '
                               f'(jpeg and png are supported)')
    if len(msg.data) == 0:
        raise ImageDecodeError('CompressedImage has no data')
    w, h = compressed_size(msg.data)
    if w <= 0 or h <= 0:
        raise ImageDecodeError(f'CompressedImage declares an empty image {w}x{h}')
    _check_pixels(w, h, max_pixels)


def image_msg_to_array(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Pixels of a sensor_msgs/Image as in its encoding: (H, W) or (H, W, C) uint8."""
    h, w, ch, step = check_image_fields(msg, max_pixels)
    buf = _raw_buffer(msg.data)
    rows = buf[:step * h].reshape(h, step)[:, :w * ch]
    return rows.reshape(h, w, ch) if ch > 1 else rows.reshape(h, w)


def to_rgb(pixels: np.ndarray, encoding: str) -> np.ndarray:
    """Convert decoded pixels in ``encoding`` to contiguous RGB (H, W, 3) uint8."""
    enc = encoding.lower()
    if enc == 'rgb8':
        return np.ascontiguousarray(pixels)
    if enc == 'bgr8':
        return np.ascontiguousarray(pixels[..., ::-1])
    if enc == 'rgba8':
        return np.ascontiguousarray(pixels[..., :3])
    if enc == 'bgra8':
        return np.ascontiguousarray(pixels[..., 2::-1])
    if enc == 'mono8':
        return np.repeat(pixels[..., None], 3, axis=2)
    raise ImageDecodeError(f'cannot convert encoding {encoding!r} to rgb8')


def image_msg_to_rgb(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """RGB (H, W, 3) uint8 from any supported sensor_msgs/Image."""
    return to_rgb(image_msg_to_array(msg, max_pixels), str(msg.encoding))


def compressed_msg_to_rgb(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """RGB (H, W, 3) uint8 from a sensor_msgs/CompressedImage (jpeg or png) that declares at
    most ``max_pixels`` pixels; the decoded size must be the declared one."""
    import cv2
    check_compressed_fields(msg, max_pixels)
    w, h = compressed_size(msg.data)
    buf = _raw_buffer(msg.data)
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None:
        raise ImageDecodeError(f'CompressedImage data ({buf.size} bytes) is not a valid '
                               f'{msg.format} image')
    if img.shape[:2] != (h, w):
        raise ImageDecodeError(f'CompressedImage decoded to {img.shape[1]}x{img.shape[0]}, '
                               f'its header declares {w}x{h}')
    return np.ascontiguousarray(img[..., ::-1])


def encode_compressed(image_rgb: np.ndarray, fmt: str = 'jpeg', quality: int = 90) -> bytes:
    """Encode RGB pixels as jpeg/png bytes for a CompressedImage."""
    import cv2
    ext = '.png' if fmt == 'png' else '.jpg'
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == '.jpg' else []
    ok, out = cv2.imencode(ext, np.ascontiguousarray(image_rgb[..., ::-1]), params)
    if not ok:
        raise ImageDecodeError(f'could not encode image as {fmt}')
    return out.tobytes()
