"""The package's layout: no import circle (function-level imports included), imports that run
down the floors only, no module named like a standard-library one, a console script for every
command-line tool, one frame step, and functions that fit on a screen."""

import ast
import re
import sys
from typing import Dict, List, Set

import pytest

from conftest import ROOT

pytestmark = pytest.mark.build

PKG = ROOT / 'tts_perception'


def _module(path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix('').parts)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _graph() -> Dict[str, Set[str]]:
    mods = {_module(p): p for p in PKG.rglob('*.py')}
    graph: Dict[str, Set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names: List[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f'{node.module}.{a.name}' for a in node.names]
            for n in names:
                if n in mods and n != mod:
                    graph[mod].add(n)
    return graph


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    out: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_check_finds_a_circle():
    assert _cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]


def test_no_import_circle():
    assert _cycles(_graph()) == []


def test_no_module_named_like_the_standard_library():
    clash = sorted(m for m in _graph() if m.rsplit('.', 1)[-1] in sys.stdlib_module_names)
    assert clash == []


def test_every_command_line_tool_is_a_console_script():
    scripts = dict(re.findall(r"'(\w+) = ([\w.]+):main'", (ROOT / 'setup.py').read_text()))
    for tool in ('calibrate', 'evaluate', 'bundled_profile', 'closed_loop', 'frame_player'):
        assert scripts.get(tool) == f'tts_perception.tools.{tool}', tool


# The floors of the package, bottom up: a folder imports only from floors below its own
# (function-level imports included). The README's layout section draws the same picture.
FLOORS = (('common',), ('sim', 'inference', 'control'), ('tasks',), ('bag', 'adaptive', 'model'),
          ('nodes',), ('tools',), ('',))


def _floor(module: str) -> int:
    parts = module.split('.')
    folder = parts[1] if len(parts) > 2 or (len(parts) == 2 and (PKG / parts[1]).is_dir()) \
        else ''
    return next(i for i, names in enumerate(FLOORS) if folder in names)


def test_imports_run_down_the_floors_only():
    graph = _graph()
    assert all(_floor(m) is not None for m in graph)
    up = sorted(f'{m} -> {n}' for m, deps in graph.items() for n in deps
                if _floor(n) >= _floor(m) and m.split('.')[:2] != n.split('.')[:2])
    assert not up, 'imports that do not run down the floors:\n' + '\n'.join(up)


def test_a_frames_step_is_written_once():
    """The node, evaluate, the closed loop and the bench run a frame's step through
    adaptive/frame_step.py: no other module calls what it sequences."""
    sequenced = ('_process_batch', '_probe', '_probe_slack', '_wait_for_next', '_hold_until')
    callers = {}
    for path in [*PKG.rglob('*.py'), *(ROOT / 'bench').glob('*.py')]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in sequenced:
                callers.setdefault(node.func.attr, set()).add(path.relative_to(ROOT).as_posix())
    step = 'tts_perception/adaptive/frame_step.py'
    pipeline = 'tts_perception/adaptive/pipeline.py'        # process() is one frame's batch
    assert callers['_process_batch'] <= {step, pipeline} and callers['_probe'] == {step}, callers
    assert all(callers[m] == {step} for m in sequenced[2:]), callers


MAX_FUNCTION_LINES = 60


def test_functions_fit_on_a_screen():
    long = []
    for path in PKG.rglob('*.py'):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                long.append(f'{path.relative_to(ROOT).as_posix()}:{node.name} '
                            f'({node.end_lineno - node.lineno + 1} lines)')
    assert not long, f'longer than {MAX_FUNCTION_LINES} lines: {sorted(long)}'
