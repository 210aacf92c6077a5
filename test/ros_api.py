"""Names of a ROS 2 Python API read from its sources (no import): modules, class members, the
keyword parameters of every function and method.

The same extractor reads a Humble checkout (``record_humble_api.py`` writes the record,
``humble_api.json``) and the rclpy installed here (at test time), so the two lists compare
like with like.
"""

import ast
from pathlib import Path
from typing import Dict, Iterable, List, Set


def _params(fn: ast.AST) -> List[str]:
    a = fn.args
    names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
    if a.kwarg is not None:
        names.append('**')
    return names


def _bound_names(node: ast.AST) -> Iterable[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name
    elif isinstance(node, (ast.Assign, ast.AnnAssign)):
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target]):
            for n in ast.walk(t):
                if isinstance(n, ast.Name):
                    yield n.id
    elif isinstance(node, ast.ImportFrom):
        for a in node.names:
            yield a.asname or a.name
    elif isinstance(node, ast.Import):
        for a in node.names:
            yield (a.asname or a.name).split('.')[0]
    elif isinstance(node, (ast.If, ast.Try)):
        for body in [node.body, node.orelse, getattr(node, 'finalbody', [])] + \
                [h.body for h in getattr(node, 'handlers', [])]:
            for child in body:
                yield from _bound_names(child)


def read_api(package_dir: Path, package: str) -> Dict[str, Dict]:
    """``{'modules': {module: [names]}, 'members': {class: [names]}, 'bases': {class: [base
    names as written]}, 'params': {callable name: [parameter names]}}`` for the Python
    package at ``package_dir`` (classes by qualified name)."""
    modules: Dict[str, Set[str]] = {}
    members: Dict[str, Set[str]] = {}
    bases: Dict[str, List[str]] = {}
    params: Dict[str, Set[str]] = {}
    for path in sorted(package_dir.rglob('*.py')):
        rel = path.relative_to(package_dir).with_suffix('')
        parts = [package] + list(rel.parts)
        if parts[-1] == '__init__':
            parts = parts[:-1]
        if any(p.startswith('test') for p in parts):
            continue
        mod = '.'.join(parts)
        tree = ast.parse(path.read_text(encoding='utf-8'))
        names = modules.setdefault(mod, set())
        for node in tree.body:
            names.update(_bound_names(node))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                params.setdefault(node.name, set()).update(_params(node))
            if isinstance(node, ast.ClassDef):
                own = members.setdefault(f'{mod}.{node.name}', set())
                bases[f'{mod}.{node.name}'] = [
                    getattr(b, 'id', getattr(b, 'attr', '')) for b in node.bases]
                for child in node.body:
                    own.update(_bound_names(child))
    # a sub-package is an attribute of its parent
    for mod in list(modules):
        if '.' in mod:
            parent, child = mod.rsplit('.', 1)
            modules.setdefault(parent, set()).add(child)
    return {'modules': {k: sorted(v) for k, v in sorted(modules.items())},
            'members': {k: sorted(v) for k, v in sorted(members.items())},
            'bases': dict(sorted(bases.items())),
            'params': {k: sorted(v) for k, v in sorted(params.items())}}
