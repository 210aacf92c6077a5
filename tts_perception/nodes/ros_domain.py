"""Pick a ROS_DOMAIN_ID that no other local test or demo run holds (file locks in /tmp)."""

import fcntl
import os
from typing import Dict, IO

_HELD: Dict[int, IO] = {}


def allocate_domain_id(lo: int = 11, hi: int = 99) -> int:
    """Lock and return a free domain id in [lo, hi]; held until :func:`release` or exit."""
    for dom in range(lo, hi + 1):
        f = open(f'/tmp/tts_perception_domain_{dom}.lock', 'w')
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        _HELD[dom] = f
        return dom
    raise RuntimeError(f'no free ROS_DOMAIN_ID in {lo}..{hi}')


def isolate_this_process() -> int:
    """Set localhost-only discovery and a private domain id for this process (demo, bench)."""
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    if 'ROS_DOMAIN_ID' not in os.environ:
        os.environ['ROS_DOMAIN_ID'] = str(allocate_domain_id())
    return int(os.environ['ROS_DOMAIN_ID'])


def release(dom: int) -> None:
    """Release one held domain id."""
    f = _HELD.pop(dom, None)
    if f is not None:
        f.close()
