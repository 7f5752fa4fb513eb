"""The project's tables: the main table (conf ``data.main_table``, its source ``data.source``),
every other source by name (``data.sources``), and the view of the configuration each table's
ingest and silver run with.

A table's view is the configuration with ``data.source`` set to that table's source, so ingest
and silver read one source the way they always did. The main table keeps ``data/bronze/`` and the
main silver files (``contract.json``, ``quarantine.parquet``, ``imputation.json``, the quality
report); every other table lands in ``data/bronze/<name>/`` and writes ``<name>.parquet``,
``<name>.contract.json`` and ``<name>.quarantine.parquet`` in silver, with its own id, PII and
date columns (``data.sources.<name>.id_column``, ``pii_columns``, ``date_columns``) and no target.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .errors import DataError

#: a source name: the bronze folder and silver table it lands in
TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def single_name(source: dict[str, Any]) -> str:
    """The table name of a source given alone (``data.source``): synthetic ``customers``,
    sklearn the dataset, a file its stem (snake_case), anything else ``records``."""
    kind = source.get("kind")
    if kind == "synthetic":
        return "orders" if source.get("table") == "orders" else "customers"
    if kind == "sklearn" and source.get("dataset"):
        return str(source["dataset"])
    if kind in ("csv", "parquet", "json") and source.get("path"):
        stem = Path(str(source["path"])).name.split(".")[0].replace("*", "")
        out = re.sub(r"[^0-9a-zA-Z]+", "_", stem).strip("_").lower()
        if out:
            return out if not out[0].isdigit() else f"c_{out}"
    return "records"


def sources(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every source by table name, the main table (its source: ``data.source``) first, then
    the other tables of ``data.sources`` (one set to null, e.g. in ``conf/<env>.yaml``, is left
    out)."""
    main = main_table(cfg)
    others = {n: s for n, s in (cfg["data"].get("sources") or {}).items() if s is not None}
    for name in [main, *others]:
        if not TABLE_NAME.match(str(name)):
            raise DataError(
                f"table name {name!r} (data.main_table / data.sources) is not a lowercase "
                "identifier (a-z, 0-9, _): it names the bronze folder and the silver table; "
                "rename it in conf/base.yaml"
            )
    source = cfg["data"]["source"]
    listed = others.pop(main, None)
    if listed is not None and listed != source:  # listed as in mlops.yaml: it must be the same
        raise DataError(
            f"data.sources.{main} differs from data.source, the main table's source; remove it "
            "from data.sources (conf/base.yaml) or make them the same"
        )
    return {main: source, **others}


def main_table(cfg: dict[str, Any]) -> str:
    """The table the model learns from: ``data.main_table``, else named after ``data.source``."""
    return str(cfg["data"].get("main_table") or single_name(cfg["data"]["source"]))


def table_config(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    """``cfg`` as table ``name``'s ingest and silver see it."""
    tables = sources(cfg)
    if name not in tables:
        raise DataError(f"no source named {name!r}; data.sources has {', '.join(tables)}")
    source = dict(tables[name])
    data = {**cfg["data"], "source": source}
    view = {**cfg, "data": data, "table": name}
    if name == next(iter(tables)):
        return view
    source["url_env"] = f"MLOPS_SOURCE_URL_{name.upper()}"
    data.update(
        id_column=source.get("id_column"),
        pii_columns=list(source.get("pii_columns") or []),
        date_columns=list(source.get("date_columns") or []),
        keep_features=[],
    )
    view["ml"] = {**cfg["ml"], "target": None}
    bronze = str(cfg["paths"]["bronze"]).rstrip("/")
    view["paths"] = {**cfg["paths"], "bronze": f"{bronze}/{name}"}
    return view


def silver_files(cfg: dict[str, Any], name: str) -> dict[str, str]:
    """The names of table ``name``'s silver files (the main table's are the historic ones)."""
    if name == main_table(cfg):
        return {
            "contract": "contract.json",
            "quarantine": "quarantine.parquet",
            "imputation": "imputation.json",
            "report": "data-quality",
        }
    return {
        "contract": f"{name}.contract.json",
        "quarantine": f"{name}.quarantine.parquet",
        "imputation": f"{name}.imputation.json",
        "report": f"data-quality-{name}",
    }
