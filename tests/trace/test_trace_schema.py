"""The schema is the one definition of the trace's columns: the docs show it, the recorder reads its sources."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gradscope.trace import schema

DOC = Path(__file__).resolve().parents[2] / "docs" / "trace-format.md"


def test_documentation_shows_the_schema_tables_exactly() -> None:
    """Every column of every group, with dtype, source and meaning, as schema.markdown_table prints it."""
    text = DOC.read_text(encoding="utf-8")
    for group in schema.GROUPS:
        assert f"## Group `{group.name}`" in text
        assert schema.markdown_table(group) in text, (
            f"docs/trace-format.md does not show the schema's {group.name} table; "
            "paste the output of `python -m gradscope.trace.schema`"
        )
        for col in group.columns:  # the table check above, spelled out per column
            assert f"| `{col.name}` | {col.dtype} | {col.source} | {col.meaning} |" in text
    for attr in schema.ROOT_ATTRIBUTES:
        assert f"`{attr}`" in text


def test_the_documentation_check_can_fail() -> None:
    text = DOC.read_text(encoding="utf-8")
    changed = schema.Column("loss", "float32", "device", "a different meaning")
    group = schema.Group("steps", "step", (changed,))
    assert schema.markdown_table(group) not in text


def test_every_group_has_its_key_and_unique_names() -> None:
    for group in schema.GROUPS:
        assert group.key in group.names
        assert group.column(group.key).per == "row"
        assert len(set(group.names)) == len(group.names)
    assert schema.group("layers") is schema.LAYERS and schema.column("steps", "loss").source == "device"
    with pytest.raises(KeyError):
        schema.column("steps", "nope")


def test_device_columns_fit_the_recorders_float32_buffer() -> None:
    """The recorder keeps device columns in one float32 tensor: the schema must store them as float32."""
    for group in (schema.STEPS, schema.LAYERS):
        for col in group.where(source="device"):
            assert col.dtype == "float32", col.name
    assert {c.source for c in schema.EPOCHS.columns} == {"host"}


def test_columns_check_their_source_and_shape() -> None:
    with pytest.raises(ValueError, match="source"):
        schema.Column("x", "float32", "gpu", "m")
    with pytest.raises(ValueError, match="per"):
        schema.Column("x", "float32", "host", "m", per="matrix")
    assert np.isnan(schema.column("steps", "loss").fill) and schema.column("steps", "epoch").fill == -1
