"""Small shared ROS glue: parameter declaration with descriptors, diagnostics, image messages.

Everything here works with rclpy on Humble, Jazzy and Kilted.
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
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
        if p.lo is not None and not isinstance(p.default, bool):
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


def run_node(make_node: Callable[[], Node], args=None, threads: int = 2,
             on_start: Optional[Callable[[Node], None]] = None,
             on_exit: Optional[Callable[[Node], None]] = None) -> None:
    """The common ``main``: init, build, spin on a MultiThreadedExecutor, clean shutdown on
    Ctrl-C or external shutdown (same on Humble, Jazzy, Kilted)."""
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        if on_start is not None:
            on_start(node)
        ex = MultiThreadedExecutor(num_threads=threads)
        ex.add_node(node)
        ex.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            if on_exit is not None:
                try:
                    on_exit(node)
                except Exception:  # noqa: BLE001 - the context may already be gone
                    pass
            node.destroy_node()
        rclpy.try_shutdown()
