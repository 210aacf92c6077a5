"""Small shared ROS glue: parameter declaration with descriptors, diagnostics, image messages.

Everything here works with rclpy on Humble, Jazzy and Kilted.
"""

import signal
import sys
import threading
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
import rclpy
from rclpy.exceptions import InvalidParameterValueException, ParameterException
from rclpy.executors import (ExternalShutdownException, MultiThreadedExecutor,
                             SingleThreadedExecutor)
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image

from tts_perception.common.image_codec import fill_image_msg
from tts_perception.common.settings import Setting

OK, WARN, ERROR, STALE = (DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR,
                          DiagnosticStatus.STALE)


Param = Setting    # a node-only parameter is declared like a config setting


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


class ParameterHandler:
    """Validate, then apply, a node's parameter changes on every distribution.

    Create it before declaring the parameters (the validator then sees YAML values too) and
    call :meth:`apply_with` once the state that ``apply`` changes exists. Accepted changes
    reach ``apply`` through rclpy's post-set callback (Jazzy and newer); Humble's rclpy has
    none, so there ``apply`` runs from the validator right after it accepts.
    """

    def __init__(self, node: Node, validate: Callable[[list], Any]):
        self._validate, self._apply = validate, None
        self._post = getattr(node, 'add_post_set_parameters_callback', None)
        node.add_on_set_parameters_callback(self._on_set)

    def _on_set(self, params: list):
        result = self._validate(params)
        if result.successful and self._post is None and self._apply is not None:
            self._apply(params)
        return result

    def apply_with(self, apply: Callable[[list], None]) -> None:
        """From now on, accepted changes go to ``apply(params)``."""
        self._apply = apply
        if self._post is not None:
            self._post(apply)


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


def output_topic(camera_topic: str, name: str) -> str:
    """Sibling topic of a camera topic: /ns/camera/image_raw -> /ns/camera/<name>."""
    ns = camera_topic.rsplit('/', 1)[0] if '/' in camera_topic else ''
    return f'{ns}/{name}' if ns or camera_topic.startswith('/') else name


def stamp_ns(stamp) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


EXECUTORS = ('auto', 'single', 'multi', 'events')


def make_executor(kind: str = 'auto', threads: int = 2, context=None):
    """An rclpy executor by name: single | multi | events (rclpy's EventsExecutor, Jazzy+) |
    auto (events where rclpy has it, else single: the fastest two in bench/bench_node.py)."""
    if kind == 'auto':
        try:
            return make_executor('events', threads, context)
        except ValueError:                    # Humble: no events executor
            return SingleThreadedExecutor(context=context)
    if kind == 'single':
        return SingleThreadedExecutor(context=context)
    if kind == 'multi':
        return MultiThreadedExecutor(num_threads=threads, context=context)
    if kind == 'events':
        try:
            from rclpy.experimental import EventsExecutor
        except ImportError:
            raise ValueError('the events executor needs rclpy from ROS 2 Jazzy or newer; '
                             'use --executor single') from None
        return EventsExecutor(context=context)
    raise ValueError(f'unknown executor {kind!r}; choose one of {EXECUTORS}')


def pop_flag(argv: List[str], flag: str, default: Optional[str] = None) -> Optional[str]:
    """Remove ``flag VALUE`` or ``flag=VALUE`` from ``argv`` in place and return VALUE."""
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            value = argv[i + 1]
            del argv[i:i + 2]
            return value
        if a.startswith(flag + '='):
            del argv[i]
            return a.split('=', 1)[1]
    return default


def run_node(make_node: Callable[[], Node], args: Optional[Sequence[str]] = None,
             executor: str = 'auto', threads: int = 2,
             on_start: Optional[Callable[[Node], None]] = None,
             on_exit: Optional[Callable[[Node], None]] = None,
             until: Optional[Callable[[Node], bool]] = None,
             exit_code: Optional[Callable[[Node], int]] = None) -> int:
    """The common ``main`` of every node; returns the process exit code.

    SIGINT and SIGTERM (once or repeatedly, as a terminal and ``ros2 launch`` both send
    them) only set a flag: the spin loop ends, ``on_exit`` runs while the context is still
    valid (the controller publishes its zero command there), then the executor is shut down
    before the node is destroyed and rclpy is shut down. A node that cannot start (a bad
    parameter value, a missing file) prints one line naming the reason and exits with 2.
    ``until(node)`` ends the spin loop when true (a node that finishes its work);
    ``exit_code(node)`` then gives the exit code.
    """
    from tts_perception.nodes.dds import use_profile
    use_profile()
    stop = threading.Event()

    def _on_signal(signum, frame) -> None:
        stop.set()
    rclpy.init(args=list(args) if args is not None else None,
               signal_handler_options=SignalHandlerOptions.NO)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    node, ex, code = None, None, 0
    try:
        try:
            node = make_node()
            if on_start is not None:
                on_start(node)
        except StartupError as exc:
            sys.stderr.write(f'{exc}\n')
            return 2
        except (ValueError, TypeError, FileNotFoundError, ParameterException,
                InvalidParameterValueException) as exc:
            sys.stderr.write(f'cannot start: {type(exc).__name__}: {exc}\n')
            return 2
        ex = make_executor(executor, threads)
        ex.add_node(node)
        while not stop.is_set() and rclpy.ok() and not (until is not None and until(node)):
            ex.spin_once(timeout_sec=0.1)
        if exit_code is not None:
            code = exit_code(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if not _shut_down(node, ex, on_exit):
            code = 1
    return code


def _shut_down(node: Optional[Node], ex, on_exit: Optional[Callable[[Node], None]]) -> bool:
    """``on_exit`` while the context is still valid, then the executor, the node and rclpy,
    in that order; further signals ignored from here on. False where ``on_exit`` failed."""
    ok = True
    if node is not None and on_exit is not None:
        try:
            on_exit(node)
        except Exception as exc:  # noqa: BLE001 - still shut down the rest
            sys.stderr.write(f'on exit: {exc!r}\n')
            ok = False
    if ex is not None:
        ex.shutdown(timeout_sec=5.0)
    if node is not None:
        node.destroy_node()
    rclpy.try_shutdown()
    # the process is about to exit: a further signal (ros2 launch and the terminal each
    # send one) must not kill it while the interpreter finalizes (CPython resets Python
    # handlers to the default action then, but leaves ignored signals ignored)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    return ok


class StartupError(RuntimeError):
    """A node cannot start; the message is the one line shown to the user."""
