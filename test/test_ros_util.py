"""ROS glue in one process on a private rclpy Context: the parameter handler on the path of
every distribution (post-set callback where rclpy has it, Humble's path where it does not)."""

import os

from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter
import pytest

from tts_perception.nodes.ros_util import declare_params, Param, ParameterHandler

pytestmark = pytest.mark.unit


@pytest.fixture
def ctx():
    c = Context()
    rclpy.init(context=c, domain_id=int(os.environ['ROS_DOMAIN_ID']))
    yield c
    rclpy.try_shutdown(context=c)


class _HumbleLikeNode(Node):
    """A real node whose rclpy lacks the post-set callback, as Humble's does."""

    add_post_set_parameters_callback = None


def _node(cls, ctx, overrides=()):
    node = cls('param_handler_test', context=ctx,
               parameter_overrides=[Parameter(n, value=v) for n, v in overrides])
    applied, order = [], []

    def validate(params):
        order.append('validate')
        bad = [p for p in params if p.name == 'gain' and p.value > 10.0]
        return SetParametersResult(successful=not bad, reason='gain > 10' if bad else '')

    def apply(params):
        order.append('apply')
        applied.extend((p.name, p.value) for p in params)

    handler = ParameterHandler(node, validate)
    values = declare_params(node, [Param('gain', 1.0, 'a gain', 0.0, 100.0)])
    handler.apply_with(apply)
    return node, values, applied, order


@pytest.mark.parametrize('cls', [Node, _HumbleLikeNode], ids=['post-set', 'humble'])
def test_accepted_changes_are_applied_once_refused_ones_never(cls, ctx):
    node, values, applied, order = _node(cls, ctx, overrides=[('gain', 3.0)])
    try:
        assert values == {'gain': 3.0}          # the YAML value passed the validator
        assert order == ['validate'] and applied == []   # declaring applies nothing
        assert node.set_parameters([Parameter('gain', value=5.0)])[0].successful
        refused = node.set_parameters([Parameter('gain', value=50.0)])[0]
        assert not refused.successful and refused.reason == 'gain > 10'
        assert applied == [('gain', 5.0)]
        assert node.get_parameter('gain').value == 5.0
    finally:
        node.destroy_node()


def test_a_refused_yaml_value_stops_the_node_at_declaration(ctx):
    with pytest.raises(Exception, match='gain > 10'):
        _node(Node, ctx, overrides=[('gain', 20.0)])


def test_camera_reliability_follows_the_publishers():
    from rclpy.qos import ReliabilityPolicy as R
    from tts_perception.nodes.camera_qos import adapted_reliability
    assert adapted_reliability([R.RELIABLE, R.RELIABLE]) == R.RELIABLE
    assert adapted_reliability([R.RELIABLE, R.BEST_EFFORT]) == R.BEST_EFFORT
    assert adapted_reliability([R.BEST_EFFORT]) == R.BEST_EFFORT
    assert adapted_reliability([]) == R.BEST_EFFORT        # hears whoever comes first
