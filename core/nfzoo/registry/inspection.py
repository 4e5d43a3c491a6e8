"""Describe registered things without importing them (so `nfzoo info` stays fast and torch-free):
a builder's config keys and defaults are read from its source with `ast`."""
from __future__ import annotations

import ast
import importlib.util
from typing import Any, Dict, Optional


def _literal(node: Optional[ast.AST]) -> Any:
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node)


def signature_defaults(target: str) -> Optional[Dict[str, Any]]:
    """{'key': default, ...} of a "module:function" target's keyword arguments, or None if unknown."""
    if not isinstance(target, str) or ":" not in target:
        return None
    module, _, attr = target.partition(":")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    try:
        tree = ast.parse(open(spec.origin, encoding="utf-8").read())
    except (OSError, SyntaxError):
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == attr.split(".")[0]:
            fn = node
            if isinstance(fn, ast.ClassDef):
                fn = next((n for n in fn.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"),
                          None)
                if fn is None:
                    return {}
            args = fn.args
            pos = [a for a in args.posonlyargs + args.args if a.arg not in ("self", "cls")]
            defaults = [None] * (len(pos) - len(args.defaults)) + list(args.defaults)
            out = {a.arg: _literal(d) for a, d in zip(pos, defaults)}
            out.update({a.arg: _literal(d) for a, d in zip(args.kwonlyargs, args.kw_defaults)})
            return out
    return None


