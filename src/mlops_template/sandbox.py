"""Jinja's immutable sandbox with bounded growth, for templates that do not ship with the tool.

Jinja's sandbox stops attribute tricks (``''.__class__``) and caps ``range()`` at 100,000 items,
but ``{{ 'a' * 10**10 }}`` still asks for 10 GB. Here every operation that can make a value much
larger than its inputs is checked *before* it runs, against
:data:`~mlops_template.limits.MAX_SANDBOX_LENGTH` (strings, lists, tuples) and
:data:`~mlops_template.limits.MAX_SANDBOX_INT_BITS` (integers):

* the operators ``*``, ``**``, ``+``, ``%`` (intercepted binary operators) and ``~`` (string
  concatenation, through the code generator);
* the ``str`` methods that pad, repeat or splice (``center``, ``ljust``, ``rjust``, ``zfill``,
  ``expandtabs``, ``replace``, ``join``, ``format``, ``format_map``) and any call with an integer
  argument above the length limit to a function named like cookiecutter's ``random_ascii_string``;
* ``%`` and ``format``/``format_map`` by their field count times the longest argument, since a
  field may repeat one argument (``'%(a)s' * n % {'a': long}``);
* the filters that pad, repeat or fill (``center``, ``indent``, ``wordwrap``, ``replace``,
  ``join``, ``format``, ``batch``, ``slice``, ``tojson`` and cookiecutter's ``jsonify``), and
  every other filter by its input times a growth factor and its string arguments
  (``slugify(separator=...)``, chained ``urlencode``); every filter's result is measured too;
* ``lipsum(n, max=...)``, by ``n * max`` words;
* the rendered text itself, which is assembled piece by piece and stops at the length limit.

A ``MemoryError`` or ``RecursionError`` during a render becomes a :class:`GrowthError` (with a
hint), so a value no check sizes still ends in a located error rather than an empty one.

Imported only when a sandboxed render needs it (jinja2 is a heavy import).
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn

import jinja2
import jinja2.compiler
import jinja2.nodes
import jinja2.sandbox
from jinja2.exceptions import SecurityError

from mlops_template.limits import MAX_SANDBOX_INT_BITS, MAX_SANDBOX_LENGTH


class GrowthError(SecurityError):
    """A sandboxed template tried to build a value larger than the limits allow."""

    hint = (
        "a template that does not ship with mlops may not build values longer than "
        f"{MAX_SANDBOX_LENGTH:,} characters or items; make the template render less"
    )


def _too_long(length: int, what: str) -> GrowthError:
    return GrowthError(
        f"{what} would be {length:,} long, over the sandbox limit of {MAX_SANDBOX_LENGTH:,}"
    )


def _check_length(length: int, what: str) -> None:
    if length > MAX_SANDBOX_LENGTH:
        raise _too_long(length, what)


def _sized(value: Any) -> bool:
    return isinstance(value, (str, bytes, list, tuple))


def _int_bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


def _check_int(bits: int, what: str) -> None:
    if bits > MAX_SANDBOX_INT_BITS:
        raise GrowthError(
            f"{what} would be a {bits:,}-bit integer, over the sandbox limit of "
            f"{MAX_SANDBOX_INT_BITS:,} bits"
        )


def _check_repeat(left: Any, right: Any) -> None:
    for seq, count in ((left, right), (right, left)):
        if _sized(seq) and isinstance(count, int):
            _check_length(len(seq) * max(count, 0), "a repeated value")
    if isinstance(left, int) and isinstance(right, int):
        _check_int(_int_bits(left) + _int_bits(right), "a product")


def _check_power(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        _check_int(_int_bits(left) * right, "a power")


#: a width or precision in a printf-style or str.format specification
_WIDTH = re.compile(r"(\d+)")


def _check_format_spec(text: str) -> None:
    """Refuse a format string whose widths or precisions exceed the length limit."""
    for match in _WIDTH.finditer(text):
        digits = match.group(1)
        if len(digits) > 8 or int(digits) > MAX_SANDBOX_LENGTH:
            raise GrowthError(
                f"a format width or precision of {digits} is over the sandbox limit of "
                f"{MAX_SANDBOX_LENGTH:,}"
            )


def _text_length(value: Any) -> int:
    """How long ``str(value)`` is, without building it for strings, bytes and integers."""
    if isinstance(value, (str, bytes)):
        return len(value) * (4 if isinstance(value, bytes) else 1)  # b'\xff' -> 4 characters
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 3 + 2  # a generous count of decimal digits and the sign
    return len(str(value))


def _longest(values: Iterable[Any]) -> int:
    return max((_text_length(v) for v in values), default=0)


def _check_fields(text: str, marker: str, values: Iterable[Any], what: str) -> None:
    """Before a format runs: at most one field per ``marker`` in ``text``, each no longer than
    the longest value (conservative: a field may repeat any argument, by name or index)."""
    fields = text.count(marker)
    if fields:
        _check_length(len(text) + fields * _longest(values), what)


def _check_percent(left: Any, right: Any) -> None:
    if isinstance(left, str):
        _check_format_spec(left)
        if isinstance(right, Mapping):
            _check_fields(left, "%", right.values(), "a %-formatted value")
        elif isinstance(right, tuple):
            _check_fields(left, "%", right, "a %-formatted value")
        else:
            _check_fields(left, "%", (right,), "a %-formatted value")
        if "*" in left:  # '%*d' takes its width from the arguments
            args = right if isinstance(right, tuple) else (right,)
            for arg in args:
                if isinstance(arg, int):
                    _check_length(abs(arg), "a format width")


def _check_add(left: Any, right: Any) -> None:
    if _sized(left) and _sized(right):
        _check_length(len(left) + len(right), "a concatenation")


_BINOP_CHECKS: dict[str, Callable[[Any, Any], None]] = {
    "*": _check_repeat,
    "**": _check_power,
    "%": _check_percent,
    "+": _check_add,
}


def _check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        hits = text.count(old) if old else len(text) + 1
        if isinstance(count, int) and count >= 0:
            hits = min(hits, count)
        _check_length(len(text) + hits * len(new), "a replace() result")


def _check_join(separator: Any, items: list[Any]) -> None:
    if isinstance(separator, str):
        total = len(separator) * max(len(items) - 1, 0)
        total += sum(len(x) if _sized(x) else 20 for x in items)
        _check_length(total, "a join() result")


def _check_width(width: Any, what: str) -> None:
    if isinstance(width, int):
        _check_length(width, what)


class _BoundedCodeGenerator(jinja2.compiler.CodeGenerator):
    """``a ~ b`` goes through the environment's bounded join instead of ``str_join``."""

    def visit_Concat(self, node: jinja2.nodes.Concat, frame: Any) -> None:
        self.write("environment.mlops_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _bounded_concat(pieces: Iterable[Any]) -> str:
    """``"".join`` that stops as soon as the text would pass the length limit."""
    out: list[str] = []
    total = 0
    for piece in pieces:
        text = str(piece)
        total += len(text)
        if total > MAX_SANDBOX_LENGTH:
            raise _too_long(total, "the rendered text")
        out.append(text)
    return "".join(out)


def _filter_wrappers(filters: dict[str, Any]) -> dict[str, Any]:
    """Bounded versions of the built-in filters that can grow their input many times over."""

    def wrap(name: str, check: Callable[..., None]) -> None:
        original = filters[name]

        skip = 1 if getattr(original, "jinja_pass_arg", None) is not None else 0

        @functools.wraps(original)
        def bounded(*args: Any, **kwargs: Any) -> Any:
            check(*args[skip:], **kwargs)  # without the context a filter may be passed first
            result = original(*args, **kwargs)
            if _sized(result):  # the estimate above is conservative; this is the backstop
                _check_length(len(result), f"the result of the {name} filter")
            return result

        filters[name] = bounded

    def center(value: Any, width: Any = 80) -> None:
        _check_width(width, "a centered value")

    def indent(value: Any, width: Any = 4, *_: Any, **__: Any) -> None:
        pad = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        lines = str(value).count("\n") + 1
        _check_length(len(str(value)) + lines * max(pad, 0), "an indented value")

    def wordwrap(value: Any, width: Any = 79, break_long_words: Any = True,
                 wrapstring: Any = None, *_: Any, **kwargs: Any) -> None:  # fmt: skip
        wrap_with = kwargs.get("wrapstring", wrapstring)
        extra = len(wrap_with) if isinstance(wrap_with, str) else 1
        _check_length(len(str(value)) * (1 + extra), "a word-wrapped value")

    def replace(value: Any, old: Any, new: Any, count: Any = None) -> None:
        _check_replace(str(value), str(old), str(new), -1 if count is None else count)

    def format_(value: Any, *args: Any, **kwargs: Any) -> None:
        _check_percent(str(value), kwargs or args)

    def batch(value: Any, linecount: Any, fill_with: Any = None) -> None:
        _check_width(linecount, "a batch size")

    def slice_(value: Any, slices: Any, fill_with: Any = None) -> None:
        _check_width(slices, "a slice count")

    def tojson(value: Any, indent: Any = None) -> None:
        if isinstance(indent, int) and indent > 64:
            raise GrowthError(f"tojson(indent={indent}) is over the sandbox limit of 64")
        if isinstance(indent, str) and len(indent) > 64:
            raise GrowthError(
                f"a tojson indent of {len(indent)} characters is over the limit of 64"
            )

    def jsonify(value: Any, indent: Any = 4) -> None:  # cookiecutter's JsonifyExtension
        tojson(value, indent)

    def generic(name: str) -> Callable[..., None]:
        """Any other filter: its input times the growth an escaping filter can cause, plus, for
        filters not known to ignore them, the string arguments once per input item (a separator
        or replacement may land between every two characters, as in ``slugify(separator=...)``)."""
        factor = _FACTORS.get(name, 1)
        by_args = name not in _NO_ARGUMENT_GROWTH

        def check(value: Any, *args: Any, **kwargs: Any) -> None:
            size = _input_size(value, name)
            extra = 0
            if by_args:
                extra = sum(len(a) for a in (*args, *kwargs.values()) if isinstance(a, str))
            _check_length(size * (factor + extra), f"the result of the {name} filter")

        return check

    for name in list(filters):
        if name not in _SPECIFIC:
            wrap(name, generic(name))
    for name, check in (("center", center), ("indent", indent), ("wordwrap", wordwrap),
                        ("replace", replace), ("format", format_),
                        ("batch", batch), ("slice", slice_), ("tojson", tojson),
                        ("jsonify", jsonify)):  # fmt: skip
        if name in filters:
            wrap(name, check)
    if "join" in filters:
        original_join = filters["join"]

        @functools.wraps(original_join)
        def join(eval_ctx: Any, value: Any, d: Any = "", attribute: Any = None) -> Any:
            items = list(value)
            if attribute is None:
                _check_join(str(d), items)
            return original_join(eval_ctx, items, d, attribute)

        filters["join"] = join
    return filters


#: the filters with their own check above
_SPECIFIC = frozenset(
    ("center", "indent", "wordwrap", "replace", "format", "batch", "slice", "tojson", "jsonify",
     "join")
)  # fmt: skip
#: output characters per input character for filters that grow text without an argument
#: saying so (``&`` -> ``&amp;``; ``urlencode`` is measured in UTF-8 bytes, 3 characters each)
_FACTORS = {"escape": 5, "e": 5, "forceescape": 5, "xmlattr": 5, "urlencode": 3, "pprint": 4}
#: filters whose string arguments select, name or replace a value at most once, never repeat
_NO_ARGUMENT_GROWTH = frozenset(
    ("default", "d", "attr", "map", "select", "reject", "selectattr", "rejectattr", "sort",
     "dictsort", "groupby", "unique", "min", "max", "sum", "first", "last", "length", "count",
     "list", "items", "random", "reverse", "int", "float", "abs", "round", "safe", "trim",
     "truncate", "truncatewords", "wordcount", "striptags", "capitalize", "lower", "upper",
     "title", "string", "filesizeformat", "urlencode", "escape", "e", "forceescape")
)  # fmt: skip


def _input_size(value: Any, name: str) -> int:
    if name == "urlencode" and isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if _sized(value) or isinstance(value, Mapping):
        return max(len(value), 1)
    return 1


def _bounded_lipsum(original: Callable[..., Any]) -> Callable[..., Any]:
    """Jinja's ``lipsum(n, html, min, max)`` with ``n * max`` words checked before it runs."""
    signature = inspect.signature(original)

    @functools.wraps(original)
    def lipsum(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        paragraphs, most = bound.arguments.get("n"), bound.arguments.get("max")
        if isinstance(paragraphs, int) and isinstance(most, int):
            # a word is at most 12 letters and a space; a paragraph adds its tags or newlines
            _check_length(max(paragraphs, 0) * (max(most, 0) * 13 + 16), "lipsum()")
        result = original(*args, **kwargs)
        if _sized(result):
            _check_length(len(result), "lipsum()")
        return result

    return lipsum


#: a replacement field whose format spec takes a width from the arguments: '{:>{w}}'
_NESTED_WIDTH = re.compile(r"\{[^{}]*:[^{}]*\{")


def _check_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    target = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
    owner = getattr(target, "__self__", None)
    name = getattr(target, "__name__", "")
    if isinstance(owner, str):
        if name in ("center", "ljust", "rjust", "zfill") and args:
            _check_width(args[0], f"str.{name}()")
        elif name == "expandtabs":
            size = args[0] if args else kwargs.get("tabsize", 8)
            if isinstance(size, int):
                _check_length(len(owner) + owner.count("\t") * size, "str.expandtabs()")
        elif name == "replace" and len(args) >= 2:
            _check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else -1)
        elif name in ("format", "format_map"):
            _check_format_spec(owner)
            given: list[Any] = [*args, *kwargs.values()]
            if name == "format_map" and args and isinstance(args[0], Mapping):
                given = list(args[0].values())
            _check_fields(owner, "{", given, f"str.{name}()")
            if _NESTED_WIDTH.search(owner):
                values = [*args, *kwargs.values()]
                if name == "format_map" and args and isinstance(args[0], dict):
                    values = list(args[0].values())
                for value in values:
                    _check_width(value, "a format width")
    elif name == "random_ascii_string":  # cookiecutter's RandomStringExtension
        for value in (*args, *kwargs.values()):
            _check_width(value, "a random string")


class BoundedSandbox(jinja2.sandbox.ImmutableSandboxedEnvironment):
    """The immutable sandbox with every growth path above checked before it runs."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset(_BINOP_CHECKS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.concat = _bounded_concat  # type: ignore[method-assign]
        self.filters = _filter_wrappers(dict(self.filters))
        lipsum = self.globals.get("lipsum")
        if callable(lipsum):
            self.globals = {**self.globals, "lipsum": _bounded_lipsum(lipsum)}

    def handle_exception(self, source: str | None = None) -> NoReturn:
        """Running out of memory or stack while rendering becomes a :class:`GrowthError`, which
        callers report with the file's name and a hint, instead of an empty ``MemoryError``."""
        exc = sys.exc_info()[1]
        if isinstance(exc, MemoryError):
            raise GrowthError(
                "the template ran out of memory while rendering (a value over the sandbox limit "
                f"of {MAX_SANDBOX_LENGTH:,} that no check caught, or too little memory)"
            ) from None
        if isinstance(exc, RecursionError):
            raise GrowthError(
                "the template recursed too deeply while rendering (a macro or loop calling "
                "itself without end, or a value nested too deeply)"
            ) from None
        super().handle_exception(source)

    @staticmethod
    def mlops_concat(pieces: Iterable[Any]) -> str:
        return _bounded_concat(pieces)

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        _BINOP_CHECKS[operator_](left, right)
        return super().call_binop(context, operator_, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_call(__obj, args, kwargs)
        if getattr(__obj, "__name__", "") == "join" and isinstance(
            getattr(__obj, "__self__", None), str
        ):
            items = list(args[0]) if args else []
            _check_join(__obj.__self__, items)
            args = (items, *args[1:])
        result = super().call(__context, __obj, *args, **kwargs)
        if _sized(result):
            _check_length(len(result), f"the result of {getattr(__obj, '__name__', 'a call')}()")
        return result
