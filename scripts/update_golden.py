"""Regenerate tests/golden/ from the current templates (review the diff before committing)."""

from __future__ import annotations

from pathlib import Path

from mlops_template.render import render
from mlops_template.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"


def main() -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    tree = render(load_spec(name="Matrix Project"))
    (GOLDEN / "default-files.txt").write_text("".join(f"{p}\n" for p in tree), encoding="utf-8")
    churn = render(load_spec(REPO / "examples" / "churn" / "mlops.yaml"))
    (GOLDEN / "churn").mkdir(exist_ok=True)
    for name in ("Makefile", "pyproject.toml", ".github/CODEOWNERS", "conf/base.yaml"):
        (GOLDEN / "churn" / name.replace("/", "__")).write_text(churn.text(name), encoding="utf-8")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
