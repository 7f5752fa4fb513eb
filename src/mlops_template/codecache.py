"""Compiled Jinja code for the small template strings and conditions of the tool's own templates.

A render compiles dozens of small strings (templated path segments, values of the phase
manifests) and conditions (``when:``, ``files_when``); compiling them was a third of the time of
`mlops new`. Their code is kept in one file next to Jinja's bytecode cache, keyed by the source
text (a changed string is simply a new entry) in a file named by the Python version and every
environment option that changes the compiled code. Sandboxed environments (templates that do not
ship with the tool) never use it.

The tool's version does not name its code (an editable install, a reinstall from a newer commit),
and what Jinja compiles depends on the filters (whether they take the context) as the filters'
results do on their code: so this file and Jinja's compiled templates are stamped with the
:func:`mlops_template.cachestore.code_key` of the code that wrote them, and any other stamp is a
miss (the file starts empty, a compiled template is compiled again).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

#: the attribute of a Jinja environment that holds its cache
ATTRIBUTE = "_mlops_codes"
#: the entry of the strings file that holds the code key of the code that wrote it
_STAMP = ("stamp", "")


def cache_folder() -> Path | None:
    """The tool's cache folder for this Jinja and tool version, or None when it cannot be
    written (a read-only home: render without caches) or ``MLOPS_NO_CACHE=1`` is set."""
    if os.environ.get("MLOPS_NO_CACHE", "") not in ("", "0"):
        return None
    import jinja2

    from mlops_template import __version__
    from mlops_template.cachestore import private_folder

    return private_folder(f"jinja-{jinja2.__version__}-tool-{__version__}")


def cache_file(env: Any) -> Path | None:
    import hashlib

    folder = cache_folder()
    if folder is None:
        return None
    options = (sys.version, sys.implementation.cache_tag, type(env).__qualname__,
               env.block_start_string, env.block_end_string, env.variable_start_string,
               env.variable_end_string, env.comment_start_string, env.comment_end_string,
               env.trim_blocks, env.lstrip_blocks, env.keep_trailing_newline,
               env.line_statement_prefix, env.line_comment_prefix, env.newline_sequence,
               env.optimized, sorted(env.filters), sorted(env.tests))  # fmt: skip
    key = hashlib.sha256(repr(options).encode("utf-8")).hexdigest()[:16]
    return folder / f"strings-{key}.marshal"


class CodeCache:
    """Source text -> compiled module code, loaded from and saved to one marshal file."""

    #: entries beyond this are not added, so the file stays small whatever is rendered
    LIMIT = 4096

    def __init__(self, path: Path | None, stamp: str = "") -> None:
        self.path = path
        self.stamp = stamp
        self.codes: dict[tuple[str, str], Any] = {}
        self.dirty = False
        if path is None:
            return
        import marshal

        try:
            loaded = marshal.loads(path.read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return  # missing or unreadable: start empty (it is rewritten on save)
        if isinstance(loaded, dict) and loaded.pop(_STAMP, None) == stamp:
            self.codes = loaded  # (written by other code: start empty)

    def get(self, kind: str, source: str) -> Any:
        return self.codes.get((kind, source))

    def put(self, kind: str, source: str, code: Any) -> None:
        if self.path is not None and len(self.codes) < self.LIMIT:
            self.codes[(kind, source)] = code
            self.dirty = True

    def save(self) -> None:
        """Write the file when entries were added; a failure only costs the next run time."""
        if not self.dirty or self.path is None:
            return
        import marshal
        import tempfile

        self.dirty = False
        try:
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".strings-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(marshal.dumps({**self.codes, _STAMP: self.stamp}))
                os.replace(tmp, self.path)  # a reader sees the old file or the new one, whole
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            pass


def bytecode_cache(folder: Path, stamp: str) -> Any:
    """Jinja's ``FileSystemBytecodeCache`` in ``folder``, reading each file whole: Jinja's own
    ``marshal.load`` on an open file reads it in thousands of small pieces (3x slower). The
    checksum of a template covers ``stamp`` (the tool's code key) as well as its source."""
    import io
    import marshal
    import pickle

    import jinja2
    from jinja2.bccache import bc_magic

    class FastBytecodeCache(jinja2.FileSystemBytecodeCache):
        def get_source_checksum(self, source: str) -> str:
            import hashlib

            return hashlib.sha1(f"{stamp}\0{source}".encode()).hexdigest()

        def load_bytecode(self, bucket: Any) -> None:
            # what Bucket.load_bytecode does (magic, pickled checksum, marshalled code; any
            # mismatch or damage: no code, so the template is compiled again)
            try:
                with open(self._get_cache_filename(bucket), "rb") as handle:
                    data = handle.read()
            except (FileNotFoundError, IsADirectoryError, PermissionError):
                return
            if not data.startswith(bc_magic):
                bucket.reset()
                return
            stream = io.BytesIO(data)
            stream.seek(len(bc_magic))
            try:
                checksum = pickle.load(stream)
            except Exception:
                bucket.reset()
                return
            if checksum != bucket.checksum:
                bucket.reset()
                return
            try:
                bucket.code = marshal.loads(data[stream.tell() :])
            except (EOFError, ValueError, TypeError):
                bucket.reset()

    return FastBytecodeCache(str(folder))


def memo_filter(env: Any, name: str, function: Any) -> Any:
    """``function`` (a pure filter of ``str(value)``), its results kept in the code cache.

    The entries are keyed by the filter's name, PyYAML's installed version (the filters that
    quote YAML call it) and the text."""
    codes: CodeCache | None = env.__dict__.get(ATTRIBUTE)
    if codes is None or codes.path is None:
        return function
    from mlops_template.cachestore import library_version

    version = library_version("pyyaml")
    if version is None:
        return function
    kind = f"f:{name}:{version}"

    def cached(value: Any) -> Any:
        text = str(value)
        hit = codes.get(kind, text)
        if type(hit) is str:
            return hit
        result = function(text)
        if type(result) is str:
            codes.put(kind, text, result)
        return result

    cached.__name__ = getattr(function, "__name__", name)
    cached.__doc__ = getattr(function, "__doc__", None)
    return cached


def attach(env: Any, stamp: str | None) -> None:
    """Give ``env`` its code cache; ``stamp``: the tool's code key (None: no cache)."""
    env.__dict__[ATTRIBUTE] = CodeCache(cache_file(env) if stamp else None, stamp or "")


def save(env: Any) -> None:
    codes: CodeCache | None = env.__dict__.get(ATTRIBUTE)
    if codes is not None:
        codes.save()


def from_string(env: Any, text: str) -> Any:
    """``env.from_string(text)``, with the compiled code from the cache when it has it."""
    codes: CodeCache | None = env.__dict__.get(ATTRIBUTE)
    if codes is None:
        return env.from_string(text)
    code = codes.get("s", text)
    if code is None:
        code = env.compile(text)
        codes.put("s", text, code)
    return env.template_class.from_code(env, code, env.make_globals(None), None)


def compile_expression(env: Any, expression: str) -> Any:
    """``env.compile_expression(expression)``, with the compiled code from the cache."""
    codes: CodeCache | None = env.__dict__.get(ATTRIBUTE)
    if codes is None:
        return env.compile_expression(expression)
    from jinja2 import nodes
    from jinja2.environment import TemplateExpression
    from jinja2.exceptions import TemplateSyntaxError
    from jinja2.parser import Parser

    code = codes.get("e", expression)
    if code is None:
        # the template Environment.compile_expression builds; on bad syntax Jinja raises its
        # own error, exactly as without the cache
        parser = Parser(env, expression, state="variable")
        try:
            expr = parser.parse_expression()
            complete = parser.stream.eos
        except TemplateSyntaxError:
            complete = False
        if not complete:
            return env.compile_expression(expression)
        expr.set_environment(env)
        body = [nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)]
        code = env.compile(nodes.Template(body, lineno=1))
        codes.put("e", expression, code)
    template = env.template_class.from_code(env, code, env.make_globals(None), None)
    return TemplateExpression(template, True)
