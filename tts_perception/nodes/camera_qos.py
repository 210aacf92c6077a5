"""Camera subscriptions whose reliability follows the camera's publishers.

Per camera: subscribe reliable when every publisher of the topic offers reliable, best effort
otherwise (rosbag2's adaptive QoS); look again whenever a publisher comes or goes (the
subscription's *matched* event where rclpy has it, else when :meth:`CameraQos.recheck` is
called, e.g. every diagnostics period). ``qos_overrides./<topic>.subscription.reliability:
reliable | best_effort`` fixes the choice (``auto`` adapts). Why: ``doc/transport.md``.
"""

import inspect
from typing import Callable, Iterable, List, Optional

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.qos import qos_profile_sensor_data, QoSPolicyKind, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CompressedImage, Image

from tts_perception.nodes.ros_util import StartupError

try:                                   # Iron and newer
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:                    # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks
_EVENTS = set(inspect.signature(SubscriptionEventCallbacks).parameters)
MATCHED = 'matched' in _EVENTS         # Jazzy and newer: publishers coming and going

RELIABILITY = {'reliable': ReliabilityPolicy.RELIABLE,
               'best_effort': ReliabilityPolicy.BEST_EFFORT}
QOS_AUTO = 'auto'


def adapted_reliability(offered) -> ReliabilityPolicy:
    """rosbag2's rule for the reliability policies ``offered`` by a topic's publishers:
    reliable when every publisher offers reliable (it delivers every frame, whatever the
    writer's transport), best effort otherwise (it hears both kinds); best effort when there
    is no publisher yet."""
    offered = list(offered)
    return ReliabilityPolicy.RELIABLE if offered and all(
        r == ReliabilityPolicy.RELIABLE for r in offered) else ReliabilityPolicy.BEST_EFFORT


class CameraLink:
    """One camera's subscription: the caller's ``key`` for it, its topic (raw, or
    ``<topic>/compressed``), the reliability it was made with and the one ``qos_overrides``
    fixes (None: auto)."""

    def __init__(self, key: str, resolved: str, transport: str):
        self.key = key
        self.topic = resolved + '/compressed' if transport == 'compressed' else resolved
        self.mtype = CompressedImage if transport == 'compressed' else Image
        self.sub = None
        self.reliability: Optional[ReliabilityPolicy] = None
        self.fixed: Optional[ReliabilityPolicy] = None


class CameraQos:
    """Creates, adapts and removes the camera subscriptions of ``node``. ``on_image(key,
    msg)`` gets every frame, ``on_lost(key, count)`` the frames the middleware lost."""

    def __init__(self, node, on_image: Callable, on_lost: Callable, steady_clock):
        self.node, self.on_image, self.on_lost, self.clock = node, on_image, on_lost, \
            steady_clock
        self.links: List[CameraLink] = []
        self._timer = None                    # one-shot: look at the publishers again

    def add(self, key: str, resolved: str, transport: str) -> CameraLink:
        """A camera to subscribe on activation; StartupError for a bad qos_overrides value."""
        link = CameraLink(key, resolved, transport)
        link.fixed = self._override(link)
        self.links.append(link)
        return link

    def subscribe_all(self) -> None:
        for link in self.links:
            self._subscribe(link, link.fixed or adapted_reliability(self._offered(link)))

    def unsubscribe_all(self) -> None:
        for link in self.links:
            if link.sub is not None:
                self.node.destroy_subscription(link.sub)
            link.sub = link.reliability = None
        if self._timer is not None:
            self.node.destroy_timer(self._timer)
            self._timer = None

    def clear(self) -> None:
        self.unsubscribe_all()
        self.links = []

    def recheck(self) -> None:
        """Resubscribe every adaptive camera whose publishers now want another reliability."""
        if self._timer is not None:
            self.node.destroy_timer(self._timer)
            self._timer = None
        for link in self.links:
            if link.sub is None or link.fixed is not None:
                continue
            offered = self._offered(link)
            want = adapted_reliability(offered)
            if offered and want != link.reliability:
                self.node.get_logger().info(
                    f'{link.topic}: publishers offer {sorted({r.name.lower() for r in offered})}'
                    f'; subscribing {want.name.lower()}')
                self._subscribe(link, want)

    def _override(self, link: CameraLink) -> Optional[ReliabilityPolicy]:
        """``qos_overrides./<topic>.subscription.reliability``: auto (None) or fixed."""
        name = f'qos_overrides.{link.topic}.subscription.reliability'
        if not self.node.has_parameter(name):
            self.node.declare_parameter(name, QOS_AUTO, ParameterDescriptor(
                description=f'Reliability of the subscription to {link.topic}: auto (reliable '
                            f'when every publisher offers reliable, else best effort), '
                            f'reliable or best_effort', read_only=True))
        value = str(self.node.get_parameter(name).value).lower()
        if value != QOS_AUTO and value not in RELIABILITY:
            raise StartupError(f'perception_node: {name} must be auto, reliable or '
                               f'best_effort, not {value!r}')
        return RELIABILITY.get(value)

    def _offered(self, link: CameraLink) -> Iterable[ReliabilityPolicy]:
        return [i.qos_profile.reliability
                for i in self.node.get_publishers_info_by_topic(link.topic)]

    def _subscribe(self, link: CameraLink, reliability: ReliabilityPolicy) -> None:
        """(Re)create the subscription with ``reliability`` (keep last 1; history and depth
        overridable through qos_overrides as usual)."""
        if link.sub is not None:
            self.node.destroy_subscription(link.sub)
        qos = QoSProfile(history=qos_profile_sensor_data.history, depth=1,
                         reliability=reliability)
        events = {}
        if 'message_lost' in _EVENTS:     # frames the middleware knows it lost
            events['message_lost'] = lambda st, lk=link: self.on_lost(
                lk.key, int(st.total_count_change))
        if MATCHED:
            # (a best-effort publisher next to a reliable subscription never matches: the
            # incompatible-QoS event tells of it)
            events['matched'] = events['incompatible_qos'] = lambda _st: self._recheck_soon()
        link.sub = self.node.create_subscription(
            link.mtype, link.topic, lambda m, k=link.key: self.on_image(k, m), qos,
            qos_overriding_options=QoSOverridingOptions(
                policy_kinds=(QoSPolicyKind.HISTORY, QoSPolicyKind.DEPTH)),
            event_callbacks=SubscriptionEventCallbacks(**events))
        link.reliability = reliability

    def _recheck_soon(self) -> None:
        """A publisher came or went: look again from a one-shot timer (never from inside
        the subscription's own event callback)."""
        if self._timer is None:
            self._timer = self.node.create_timer(0.01, self.recheck, clock=self.clock)
