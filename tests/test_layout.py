"""The package layout shows the pipeline: imports go one way, and the public entry points still work."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "shala_lib"
# data <- generation <- scoring <- training / evaluation <- viz <- pipeline <- the command modules
RANK = {
    "paths": 0,
    "files": 0,
    "environment": 0,
    "schema": 0,
    "data": 1,
    "generation": 2,
    "scoring": 3,
    "training": 4,
    "evaluation": 4,
    "viz": 5,
    "pipeline": 6,
    "train": 7,
    "reproduce": 7,
}


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):  # function-level imports count too
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("shala_lib."):
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("shala_lib.")]
    return out


def test_every_module_sits_in_a_ranked_part():
    tops = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    assert tops - {"__init__", "resources"} == set(RANK), "a new top-level module or subpackage needs its place in RANK"


def test_imports_go_one_way():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if me == "__init__":
            continue
        for line, module in _imports(path):
            other = module.split(".")[1]
            if RANK[other] > RANK[me] or (RANK[other] == RANK[me] and other != me):
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {me} imports {module}")
    assert wrong == []


def test_public_entry_points_answer():
    for module in ("shala_lib.train", "shala_lib.reproduce", "shala_lib.data.download"):
        out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True)
        assert out.returncode == 0 and "usage:" in out.stdout, (module, out.stderr[-500:])
