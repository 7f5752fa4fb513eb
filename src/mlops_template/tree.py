"""The in-memory file tree that rendering produces and writing consumes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

#: what writing did to one file (apply's and merge's reports)
Action = Literal[
    "created",
    "updated",
    "merged",
    "conflict",
    "unchanged",
    "skipped",
    "removed",
    "overwritten",
    "kept",
]


@dataclass(frozen=True)
class File:
    content: bytes
    executable: bool = False

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def is_text(self) -> bool:
        try:
            self.content.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return b"\x00" not in self.content


@dataclass
class Tree:
    """Relative POSIX path -> file. Ordered by path."""

    files: dict[str, File] = field(default_factory=dict)

    def add(self, path: str, content: bytes | str, executable: bool = False) -> None:
        data = content.encode("utf-8") if isinstance(content, str) else content
        self.files[path] = File(data, executable)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.files))

    def __len__(self) -> int:
        return len(self.files)

    def __contains__(self, path: object) -> bool:
        return path in self.files

    def text(self, path: str) -> str:
        return self.files[path].content.decode("utf-8")
