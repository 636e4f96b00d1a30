"""Reading and writing files safely: YAML without aliases or duplicate keys, writes that are atomic
(a unique temporary path renamed into place), and file locks for caches several processes build.

Every part of the workbench reads its YAML (dataset definitions, experiment configs, profiles) and
writes its outputs (prepared tables, predictions, results, figures, summary.json, the converted model)
through here, so a kill or a second process never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock


class YamlFileError(ValueError):
    """A YAML file that cannot be read as the workbench reads YAML; the message names file and line."""

    def __init__(self, source: str | Path, message: str, line: int | None = None) -> None:
        self.source, self.line = str(source), line
        where = f"{source}:{line}" if line is not None else str(source)
        super().__init__(f"{where}: {message}")


# values a YAML document may expand to through its aliases: far above any definition, config or profile,
# far below what a "billion laughs" document (a few lines of nested aliases) expands to
MAX_EXPANDED_NODES = 100_000


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML keeps the last one silently) and bounds aliases: a
    document whose aliases expand to more than `MAX_EXPANDED_NODES` values (an alias bomb: a few lines can
    expand into gigabytes) is refused before it is built. Plain aliases, as `yaml.safe_dump` writes them for
    repeated values, are read as usual."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                hash(key)
            except TypeError:
                continue  # the base class reports unhashable keys
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first on line {seen[key] + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str | bytes, source: str | Path = "<yaml>") -> Any:
    """Parse YAML text strictly (no aliases, no duplicate keys); errors name `source` and the line."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise YamlFileError(source, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = e.problem or str(e)
        raise YamlFileError(source, f"not valid YAML: {problem}", line) from None
    except yaml.YAMLError as e:
        raise YamlFileError(source, f"not valid YAML: {e}") from None
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node) -> None:
    """Raise (naming the line) when the values a node stands for, aliases expanded, exceed the bound, or when
    an alias refers to a value containing it. Sizes are memoised per node (an alias is the same node object),
    so the check is linear in the document."""
    sizes: dict[int, int] = {}
    busy: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in busy:
            raise yaml.constructor.ConstructorError(
                None, None, "a YAML alias refers to the value that contains it (a cycle)", node.start_mark
            )
        if key not in sizes:
            busy.add(key)
            if isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            elif isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            else:
                children = []
            total = 1 + sum(size(c) for c in children)
            if total > MAX_EXPANDED_NODES:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"YAML aliases here expand to more than {MAX_EXPANDED_NODES:,} values (an alias bomb?); "
                    "write the values out",
                    node.start_mark,
                )
            sizes[key] = total
            busy.discard(key)
        return sizes[key]

    size(root)


def read_yaml(path: str | Path) -> Any:
    """`load_yaml` of a file; a missing file is a FileNotFoundError naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return load_yaml(path.read_bytes(), path)


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """A unique temporary path beside `path`; renamed onto `path` when the block ends without an error,
    removed otherwise. Readers see the old file or the new one, never half of one. Works for a file or a
    folder written at the temporary path (a folder replaces only an absent or empty target)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=f".tmp{suffix if suffix is not None else path.suffix}", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # the caller creates it (a file or a folder), under a name no other process holds
    try:
        yield tmp
        if tmp.is_dir():
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
            os.rename(tmp, path)
        elif tmp.exists():
            os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def lock_for(path: str | Path, timeout: float = -1) -> FileLock:
    """A file lock guarding `path` (`<path>.lock` beside it): one process builds a cache while the others wait."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path.with_name(path.name + ".lock")), timeout=timeout)
