"""YAML loading that remembers where every key and value came from (line and column).

Used to turn pydantic's ``loc`` tuples into ``mlops.yaml:14:11 ml.metric`` locations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops_template.limits import MAX_YAML_NODES

Path_ = tuple[str | int, ...]


@dataclass
class Located:
    """A loaded document plus the positions of its nodes (1-based line and column)."""

    data: Any
    filename: str
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    duplicates: list[tuple[Path_, tuple[int, int]]] = field(default_factory=list)

    def where(self, path: Path_, *, key: bool = False) -> str:
        """The closest known position for ``path`` (falls back to its parents)."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while True:
            if probe in table:
                line, col = table[probe]
                return f"{self.filename}:{line}:{col}"
            if key and probe in self.values:
                line, col = self.values[probe]
                return f"{self.filename}:{line}:{col}"
            if not probe:
                return f"{self.filename}:1:1"
            probe = probe[:-1]


class YamlSyntaxError(Exception):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


def safe_loader() -> Any:
    """PyYAML's safe loader class: the libyaml one (about 20x faster) when PyYAML has it."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_located(text: str, filename: str, *, max_nodes: int = MAX_YAML_NODES) -> Located:
    """Parse ``text`` safely; raise ``YamlSyntaxError`` with ``file:line:col`` on bad YAML, or
    when aliases expand the document past ``max_nodes`` nodes (checked before anything walks
    the data: the parsed objects share aliased values, so building them is cheap)."""
    import yaml

    try:
        loader = safe_loader()
        node = yaml.compose(text, Loader=loader)
        # built from the composed node: the text is parsed once, for data and positions alike
        data = loader("").construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else filename
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlSyntaxError(where, f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:  # pragma: no cover - non-marked errors are rare
        raise YamlSyntaxError(filename, f"YAML error: {exc}") from None
    located = Located(data=data, filename=filename)
    if node is not None:
        try:
            _walk(node, (), located, [max_nodes])
        except _TooManyNodes:
            raise YamlSyntaxError(
                _first_alias(text, filename, loader),
                f"the document expands to more than {max_nodes:,} YAML nodes once its aliases "
                "are followed (an alias bomb?); write the values out instead of aliasing them",
            ) from None
    return located


class _TooManyNodes(Exception):
    pass


def _first_alias(text: str, filename: str, loader: Any) -> str:
    """``file:line:col`` of the first alias (``*name``) in ``text``."""
    import yaml

    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent) and event.start_mark is not None:
            return f"{filename}:{event.start_mark.line + 1}:{event.start_mark.column + 1}"
    return f"{filename}:1:1"  # pragma: no cover - only aliases repeat nodes


def _walk(node: Any, path: Path_, out: Located, budget: list[int]) -> None:
    import yaml

    budget[0] -= 1
    if budget[0] < 0:
        raise _TooManyNodes
    out.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*path, key)
            pos = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in seen:
                out.duplicates.append((child, pos))
            seen.add(key)
            out.keys[child] = pos
            _walk(value_node, child, out, budget)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), out, budget)
