"""Named sources (data.sources): the shorthand, the defaults, and every rule located in the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_template.errors import SpecError
from mlops_template.spec import Source, dump_spec, load_spec

TWO = """project:
  name: Shop
ml:
  target: churned
data:
  id_column: customer_id
  sources:
    customers: csv:data/raw/customers.csv
    orders:
      kind: json
      path: data/raw/orders.jsonl
      id_column: order_id
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mlops.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def rendered(exc: pytest.ExceptionInfo[SpecError]) -> list[str]:
    return [issue.render() for issue in exc.value.issues]


def test_the_default_synthetic_source_gives_customers_and_their_orders() -> None:
    spec = load_spec(name="Churn")
    assert spec.data.sources == {} and spec.data.main_table == "customers"
    tables = spec.data.tables
    assert list(tables) == ["customers", "orders"]
    assert (tables["customers"].table, tables["orders"].table) == ("customers", "orders")
    assert tables["orders"].id_column == "order_id"
    assert (tables["orders"].rows, tables["orders"].seed) == (50_000, 42)


def test_one_source_is_named_as_before() -> None:
    spec = load_spec(name="x", sets=["data.source=csv:data/raw/My Customers.csv", "ml.target=y"])
    assert spec.data.main_table == "my_customers"
    assert list(spec.data.tables) == ["my_customers"]
    diabetes = load_spec(name="x", sets=["data.source=sklearn:diabetes", "ml.task=regression"])
    assert list(diabetes.data.tables) == ["diabetes"]


def test_named_sources_make_the_first_the_main_table_and_data_source(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, TWO))
    assert spec.data.main_table == "customers"
    assert spec.data.source == Source(kind="csv", path="data/raw/customers.csv")
    assert spec.data.tables["orders"].kind == "json"
    # the spec written into the project loads back to the same spec (source = the main entry)
    again = load_spec(write(tmp_path, dump_spec(spec)))
    assert again == spec


@pytest.mark.parametrize(
    ("edit", "where", "fragment"),
    [
        (("    orders:\n", "    Orders:\n"), "10:7 data.sources.Orders", "not a lowercase identifier"),
        (("      kind: json\n", "      kind: xml\n"), "10:13 data.sources.orders.kind", "Input should"),
        (("      path: data/raw/orders.jsonl\n", ""), "10:7 data.sources.orders.path", "needs a path"),
        (("      path: data/raw/orders.jsonl\n", "      path: data/raw/orders.txt\n"),
         "11:13 data.sources.orders.path", "files ending in"),
        (("  id_column: customer_id\n", "  main_table: payments\n"), "6:15 data.main_table",
         "not one of data.sources (customers, orders)"),
        (("  id_column: customer_id\n", ""), "data.id_column", "set data.id_column"),
        (("      id_column: order_id\n", "      id_column: order id\n"),
         "12:18 data.sources.orders.id_column", "not a valid column name"),
        (("      id_column: order_id\n", "      table: orders\n"), "12:14 data.sources.orders.table",
         "not of a json source"),
    ],
)  # fmt: skip
def test_source_errors_are_located(
    tmp_path: Path, edit: tuple[str, str], where: str, fragment: str
) -> None:
    old, new = edit
    assert old in TWO
    path = write(tmp_path, TWO.replace(old, new, 1))
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    lines = rendered(exc)
    assert any(where in line and fragment in line for line in lines), lines
    if ":" in where.split()[0]:
        assert any(line.startswith(f"{path}:{where}") for line in lines), lines


def test_a_duplicate_source_name_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, TWO + "    customers: csv:data/raw/again.csv\n")
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    assert any(f"{path}:13:5" in r and "duplicate key" in r for r in rendered(exc)), rendered(exc)


def test_data_source_beside_sources_must_be_the_main_entry(tmp_path: Path) -> None:
    path = write(tmp_path, TWO + "  source: csv:data/raw/other.csv\n")
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    assert any(
        r.startswith(f"{path}:13:11 data.source: data.source differs") for r in rendered(exc)
    ), rendered(exc)
    same = write(tmp_path, TWO + "  source: csv:data/raw/customers.csv\n")
    assert load_spec(same).data.main_table == "customers"


def test_synthetic_orders_need_their_customers(tmp_path: Path) -> None:
    text = (
        "project: {name: x}\ndata:\n  sources:\n    customers: {kind: synthetic, rows: 100}\n"
        "    orders: {kind: synthetic, table: orders, rows: 200}\n"
    )
    with pytest.raises(SpecError) as exc:
        load_spec(write(tmp_path, text))
    assert any("data.sources.orders.rows" in r and "same rows and seed" in r for r in rendered(exc))
    alone = "project: {name: x}\ndata:\n  sources:\n    o: {kind: synthetic, table: orders}\n"
    with pytest.raises(SpecError) as exc:
        load_spec(write(tmp_path, alone))
    lines = rendered(exc)
    assert any("data.sources.o.table" in r and "belong to synthetic customers" in r for r in lines)
    assert any("data.main_table" in r and "orders table" in r for r in lines), lines
