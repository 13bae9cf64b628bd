"""The subscription filter language (Convoy/Outpost style), validated once and matched per event.

A filter is a JSON object applied to the event JSON as pushed. Keys are dotted paths into it
(``payload.amount``, ``metadata.source_ip``, ``event_type``) mapped to a condition: a literal
(equality) or an object of operators ``$eq $ne $gt $gte $lt $lte $in $nin $exists $prefix``;
``$and``/``$or`` take a list of filters and ``$not`` one filter. Every key of an object must hold,
so ``{"event_type": "order.paid", "payload.amount": {"$gte": 100}}`` is an implicit ``$and``.
A path that does not exist matches only ``$exists: false``, ``$ne`` and ``$nin``.
"""

from __future__ import annotations

from typing import Any

#: The top-level fields of the pushed event JSON a path may start with.
ROOTS = frozenset({"event_id", "user_id", "event_type", "payload", "metadata", "timestamp", "ttl"})
COMPARISONS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$prefix"})
MAX_DEPTH = 16
MAX_NODES = 256
_MISSING = object()


class FilterError(ValueError):
    """An invalid filter; ``problems`` are (location, message) pairs for the 400's details."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{p['loc']}: {p['msg']}" for p in problems))
        self.problems = problems


def validate(spec: Any) -> None:
    """Raise :class:`FilterError` listing every problem of ``spec``."""
    problems: list[dict[str, str]] = []
    nodes = [0]
    _check_filter(spec, "filter", 0, problems, nodes)
    if nodes[0] > MAX_NODES:
        problems.append({"loc": "filter", "msg": f"more than {MAX_NODES} conditions"})
    if problems:
        raise FilterError(problems)


def _check_filter(spec: Any, loc: str, depth: int, problems: list[dict[str, str]], nodes: list[int]) -> None:
    if depth > MAX_DEPTH:
        problems.append({"loc": loc, "msg": f"nested deeper than {MAX_DEPTH}"})
        return
    if not isinstance(spec, dict):
        problems.append({"loc": loc, "msg": "must be an object of paths to conditions"})
        return
    for key, value in spec.items():
        here = f"{loc}.{key}"
        nodes[0] += 1
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                problems.append({"loc": here, "msg": "must be a non-empty list of filters"})
                continue
            for i, item in enumerate(value):
                _check_filter(item, f"{here}[{i}]", depth + 1, problems, nodes)
        elif key == "$not":
            _check_filter(value, here, depth + 1, problems, nodes)
        elif key.startswith("$"):
            problems.append({"loc": here, "msg": "unknown operator here (use $and, $or, $not or a path)"})
        else:
            parts = key.split(".")
            if parts[0] not in ROOTS or any(not p for p in parts):
                problems.append(
                    {"loc": here, "msg": f"path must start with one of {', '.join(sorted(ROOTS))}"}
                )
                continue
            _check_condition(value, here, problems)


def _check_condition(cond: Any, loc: str, problems: list[dict[str, str]]) -> None:
    if not _is_operators(cond):
        return  # a literal: equality
    for op, arg in cond.items():
        here = f"{loc}.{op}"
        if op not in COMPARISONS:
            problems.append(
                {"loc": here, "msg": f"unknown operator (one of {', '.join(sorted(COMPARISONS))})"}
            )
        elif op in ("$in", "$nin") and not isinstance(arg, list):
            problems.append({"loc": here, "msg": "must be a list"})
        elif op == "$exists" and not isinstance(arg, bool):
            problems.append({"loc": here, "msg": "must be true or false"})
        elif op == "$prefix" and not isinstance(arg, str):
            problems.append({"loc": here, "msg": "must be a string"})
        elif op in ("$gt", "$gte", "$lt", "$lte") and not _orderable(arg):
            problems.append({"loc": here, "msg": "must be a number or a string"})


def _is_operators(cond: Any) -> bool:
    return (
        isinstance(cond, dict) and bool(cond) and all(isinstance(k, str) and k.startswith("$") for k in cond)
    )


def _orderable(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool))


def matches(spec: dict[str, Any], doc: dict[str, Any]) -> bool:
    """Whether the event JSON ``doc`` satisfies the (validated) filter ``spec``."""
    for key, value in spec.items():
        if key == "$and":
            if not all(matches(item, doc) for item in value):
                return False
        elif key == "$or":
            if not any(matches(item, doc) for item in value):
                return False
        elif key == "$not":
            if matches(value, doc):
                return False
        elif not _holds(value, _lookup(doc, key)):
            return False
    return True


def _lookup(doc: Any, path: str) -> Any:
    current = doc
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b  # true is not 1
    return bool(a == b)


def _holds(cond: Any, value: Any) -> bool:
    if not _is_operators(cond):
        return value is not _MISSING and _equal(value, cond)
    for op, arg in cond.items():
        if op == "$exists":
            ok = (value is not _MISSING) == arg
        elif op == "$ne":
            ok = value is _MISSING or not _equal(value, arg)
        elif op == "$nin":
            ok = value is _MISSING or not any(_equal(value, a) for a in arg)
        elif value is _MISSING:
            ok = False
        elif op == "$eq":
            ok = _equal(value, arg)
        elif op == "$in":
            ok = any(_equal(value, a) for a in arg)
        elif op == "$prefix":
            ok = isinstance(value, str) and value.startswith(arg)
        else:
            ok = _compare(op, value, arg)
        if not ok:
            return False
    return True


def _compare(op: str, value: Any, arg: Any) -> bool:
    numeric = _orderable(value) and not isinstance(value, str) and not isinstance(arg, str)
    textual = isinstance(value, str) and isinstance(arg, str)
    if not (numeric or textual):
        return False  # no ordering between a number and a string
    if op == "$gt":
        return bool(value > arg)
    if op == "$gte":
        return bool(value >= arg)
    if op == "$lt":
        return bool(value < arg)
    return bool(value <= arg)


def type_matches(patterns: tuple[str, ...] | list[str], event_type: str) -> bool:
    """Empty: every type; ``order.*`` is a prefix (``*`` alone is every type); else exact."""
    if not patterns:
        return True
    for p in patterns:
        if p.endswith("*"):
            if event_type.startswith(p[:-1]):
                return True
        elif p == event_type:
            return True
    return False
