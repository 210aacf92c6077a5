"""The package uses only rclpy, launch and launch_ros names that ROS 2 Humble has, or detects
the newer ones before use.

``humble_api.json`` records Humble's API from the sources of the ``humble`` branches (commits
in the file; ``record_humble_api.py`` writes it). The rclpy installed here (Jazzy or Kilted) is
read by the same extractor: a class member or keyword parameter it has and Humble lacks may
appear in the package only under feature detection (``try`` ... ``except AttributeError`` /
``ImportError`` / ``TypeError``, an ``if hasattr(obj, 'name')`` branch, or by string through
``getattr``).
"""

import ast
import json
from pathlib import Path
from typing import Dict, List, Set

import pytest

from conftest import ROOT
from ros_api import read_api

pytestmark = pytest.mark.build

HUMBLE = json.loads((Path(__file__).parent / 'humble_api.json').read_text())
ROS_PACKAGES = ('rclpy', 'launch', 'launch_ros')
GUARD_EXCEPTIONS = {'AttributeError', 'ImportError', 'ModuleNotFoundError', 'TypeError'}


def _sources() -> List[Path]:
    return sorted((ROOT / 'tts_perception').rglob('*.py')) + sorted(
        (ROOT / 'launch').glob('*.py'))


def _installed_rclpy() -> Dict[str, Dict]:
    import rclpy
    return read_api(Path(rclpy.__file__).parent, 'rclpy')


def _union(table: Dict[str, List[str]]) -> Set[str]:
    return {n for names in table.values() for n in names}


def _parents(tree: ast.AST) -> Dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _catches(handler: ast.ExceptHandler) -> Set[str]:
    if handler.type is None:
        return GUARD_EXCEPTIONS
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return {getattr(k, 'id', getattr(k, 'attr', '')) for k in kinds}


def _guarded(node: ast.AST, name: str, parents: Dict[ast.AST, ast.AST]) -> bool:
    child, up = node, parents.get(node)
    while up is not None:
        if isinstance(up, ast.Try) and child in up.body and any(
                _catches(h) & GUARD_EXCEPTIONS for h in up.handlers):
            return True
        if isinstance(up, ast.If) and child in up.body and any(
                isinstance(c, ast.Call) and getattr(c.func, 'id', '') == 'hasattr'
                and len(c.args) == 2 and getattr(c.args[1], 'value', None) == name
                for c in ast.walk(up.test)):
            return True
        child, up = up, parents.get(up)
    return False


def _uses(path: Path, new_members: Set[str], new_params: Dict[str, Set[str]]) -> List[str]:
    """Every use in ``path`` of a name Humble lacks, outside feature detection."""
    tree = ast.parse(path.read_text())
    parents = _parents(tree)
    rel = path.relative_to(ROOT)
    bad = []
    for node in ast.walk(tree):
        where = f'{rel}:{getattr(node, "lineno", 0)}'
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.module.split('.')[0] in ROS_PACKAGES:
            mods = HUMBLE['packages'][node.module.split('.')[0]]['modules']
            for alias in node.names:
                if node.module not in mods or alias.name not in mods[node.module]:
                    if not _guarded(node, alias.name, parents):
                        bad.append(f'{where}: from {node.module} import {alias.name}')
        elif isinstance(node, ast.Import):
            for alias in node.names:
                pkg = alias.name.split('.')[0]
                if pkg in ROS_PACKAGES and alias.name not in HUMBLE['packages'][pkg]['modules'] \
                        and not _guarded(node, alias.name, parents):
                    bad.append(f'{where}: import {alias.name}')
        elif isinstance(node, ast.Attribute) and node.attr in new_members and \
                not _guarded(node, node.attr, parents):
            bad.append(f'{where}: .{node.attr}')
        elif isinstance(node, ast.Call):
            name = getattr(node.func, 'attr', getattr(node.func, 'id', None))
            for kw in node.keywords:
                if kw.arg and kw.arg in new_params.get(name, ()) and \
                        not _guarded(node, kw.arg, parents):
                    bad.append(f'{where}: {name}({kw.arg}=...)')
    return bad


def _imported_rclpy_classes() -> Set[str]:
    """Simple names the package imports from rclpy (classes among them matter)."""
    names = set()
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or '').startswith('rclpy'):
                names.update(a.name for a in node.names)
    return names


def _members_with_bases(api: Dict[str, Dict], simple: str) -> Dict[str, Set[str]]:
    """Qualified class -> its members and those of its rclpy bases, for classes so named."""
    by_simple: Dict[str, List[str]] = {}
    for qual in api['members']:
        by_simple.setdefault(qual.rsplit('.', 1)[1], []).append(qual)
    out = {}
    for qual in by_simple.get(simple, ()):
        seen, todo, names = set(), [qual], set()
        while todo:
            q = todo.pop()
            if q in seen:
                continue
            seen.add(q)
            names.update(api['members'][q])
            for base in api['bases'].get(q, ()):
                todo.extend(by_simple.get(base, ()))
        out[qual] = names
    return out


def _new_names(classes=None):
    """Members of the given rclpy classes (default: those the package imports) that the
    installed rclpy has and Humble's lacks (a class Humble defines outside Python, such as
    its pybind ``ClockType``, is not compared), and keyword parameters newer than Humble."""
    here, humble = _installed_rclpy(), HUMBLE['packages']['rclpy']
    new_members = set()
    for simple in (classes or _imported_rclpy_classes()):
        old = _members_with_bases(humble, simple)
        for qual, names in _members_with_bases(here, simple).items():
            if qual in old:
                new_members |= {n for n in names - old[qual] if not n.startswith('__')}
    new_params = {}
    for fn, names in here['params'].items():
        old = set(humble['params'].get(fn, ()))
        if old and '**' not in old:
            extra = set(names) - old - {'**'}
            if extra:
                new_params[fn] = extra
    return new_members, new_params


def test_the_record_names_its_sources():
    for pkg in ROS_PACKAGES:
        src = HUMBLE['sources'][pkg]
        assert src['branch'] == 'humble' and len(src['commit']) == 40
        assert HUMBLE['packages'][pkg]['modules'], pkg
    rclpy_api = HUMBLE['packages']['rclpy']
    # what the record must know for the check to mean anything
    assert 'add_post_set_parameters_callback' not in rclpy_api['members']['rclpy.node.Node']
    assert 'get_publishers_info_by_topic' in rclpy_api['members']['rclpy.node.Node']
    assert 'PushRosNamespace' in HUMBLE['packages']['launch_ros']['modules'][
        'launch_ros.actions']
    assert 'PushROSNamespace' not in HUMBLE['packages']['launch_ros']['modules'][
        'launch_ros.actions']


def test_the_check_finds_names_humble_lacks(tmp_path):
    """The check itself: unguarded newer names are found, guarded ones are not."""
    new_members, new_params = _new_names({'Node', 'LifecycleNode'})
    assert 'add_post_set_parameters_callback' in new_members
    probe = ROOT / 'tts_perception' / '_humble_probe_tmp.py'
    probe.write_text(
        'from launch_ros.actions import PushROSNamespace\n'
        'from rclpy.node import Node\n'
        'def f(node):\n'
        '    node.add_post_set_parameters_callback(print)\n'
        '    if hasattr(node, "add_post_set_parameters_callback"):\n'
        '        node.add_post_set_parameters_callback(print)\n'
        '    try:\n'
        '        from rclpy.experimental import EventsExecutor\n'
        '    except ImportError:\n'
        '        pass\n')
    try:
        bad = _uses(probe, new_members, new_params)
    finally:
        probe.unlink()
    assert [b.split(': ', 1)[1] for b in bad] == [
        'from launch_ros.actions import PushROSNamespace', '.add_post_set_parameters_callback']


def test_package_uses_only_humble_api_or_detects_newer():
    new_members, new_params = _new_names()
    bad = [b for path in _sources() for b in _uses(path, new_members, new_params)]
    assert not bad, 'names Humble lacks, used without feature detection:\n' + '\n'.join(bad)
