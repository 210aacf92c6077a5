"""Small shared ROS glue: parameter declaration with descriptors, diagnostics, image messages.

Everything here works with rclpy on Humble, Jazzy and Kilted.
"""

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from sensor_msgs.msg import Image

from tts_perception.image_codec import fill_image_msg

OK, WARN, ERROR, STALE = (DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR,
                          DiagnosticStatus.STALE)


@dataclass(frozen=True)
class Param:
    """One parameter: name, default, description and an optional numeric range."""

    name: str
    default: Any
    description: str
    lo: Optional[float] = None
    hi: Optional[float] = None
    read_only: bool = False


def declare_params(node: Node, params: Iterable[Param]) -> Dict[str, Any]:
    """Declare every parameter with a descriptor; returns name -> current value."""
    out = {}
    for p in params:
        desc = ParameterDescriptor(description=p.description, read_only=p.read_only)
        if p.lo is not None and isinstance(p.default, bool) is False:
            if isinstance(p.default, int):
                desc.integer_range = [IntegerRange(from_value=int(p.lo), to_value=int(p.hi),
                                                   step=0)]
            elif isinstance(p.default, float):
                desc.floating_point_range = [FloatingPointRange(
                    from_value=float(p.lo), to_value=float(p.hi), step=0.0)]
        if isinstance(p.default, list) and not p.default:
            from rclpy.parameter import Parameter
            node.declare_parameter(p.name, Parameter.Type.STRING_ARRAY, desc)
        else:
            node.declare_parameter(p.name, p.default, desc)
        out[p.name] = node.get_parameter(p.name).value
    return out


def check_ranges(params: Sequence[Param], changes: Dict[str, Any]) -> Optional[str]:
    """Reason text if any changed value is out of its declared range (rclpy checks too)."""
    by_name = {p.name: p for p in params}
    for name, value in changes.items():
        p = by_name.get(name)
        if p is None or p.lo is None or isinstance(value, (str, list, bool)):
            continue
        if not (p.lo <= value <= p.hi):
            return f'{name}={value} is outside [{p.lo}, {p.hi}]'
    return None


def kv(items: Dict[str, Any]) -> List[KeyValue]:
    """KeyValue list from a dict (floats with 4 significant digits)."""
    out = []
    for k, v in items.items():
        if isinstance(v, float):
            v = f'{v:.4g}'
        out.append(KeyValue(key=str(k), value=str(v)))
    return out


def status(name: str, hardware_id: str, level: Any, message: str,
           values: Dict[str, Any]) -> DiagnosticStatus:
    """A DiagnosticStatus with key-values; ``level`` is one of OK/WARN/ERROR/STALE."""
    st = DiagnosticStatus(name=name, hardware_id=hardware_id, message=message, values=kv(values))
    st.level = level
    return st


def diag_array(node: Node, statuses: Sequence[DiagnosticStatus]) -> DiagnosticArray:
    """A stamped DiagnosticArray."""
    arr = DiagnosticArray(status=list(statuses))
    arr.header.stamp = node.get_clock().now().to_msg()
    return arr


def level_of(st: DiagnosticStatus) -> int:
    """Diagnostic level as int (it is a byte on some distros)."""
    lv = st.level
    return lv[0] if isinstance(lv, (bytes, bytearray)) else int(lv)


def values_of(st: DiagnosticStatus) -> Dict[str, str]:
    """Key-values of a DiagnosticStatus as a dict."""
    return {k.key: k.value for k in st.values}


def image_msg(pixels: np.ndarray, encoding: str, header) -> Image:
    """A sensor_msgs/Image with ``header`` copied."""
    msg = Image()
    msg.header = header
    return fill_image_msg(msg, pixels, encoding)


def stamp_ns(stamp) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def split_type(value: Any) -> Tuple[str, ...]:
    """A list parameter as a tuple of non-empty strings."""
    return tuple(str(v) for v in (value or []) if str(v))
