"""Any CSV: column and task inference, missing labels, bad rows, clear errors."""
from __future__ import annotations

import gzip
import os
import warnings

import numpy as np
import pytest

from gradscope.chem import DataWarning, load_dataset
from gradscope.chem.tables import read_table
from gradscope.errors import GradscopeError


def write(tmp_path, name, text, gz=False):
    p = tmp_path / name
    data = text.encode()
    p.write_bytes(gzip.compress(data) if gz else data)
    return p


REG = """id,Compound,logS,weight,smiles
1,ethanol,0.5,46.07,CCO
2,benzene,-1.6,78.11,c1ccccc1
3,phenol,0.0,94.11,Oc1ccccc1
4,pyridine,1.1,79.1,c1ccncc1
"""


def test_regression_csv_inference(tmp_path):
    ds = load_dataset(write(tmp_path, "sol.csv", REG), progress=False)
    assert ds.spec.smiles_column == "smiles"
    assert ds.target_names == ("logS", "weight")  # 'id' is an identifier, 'Compound' is text
    assert ds.task == "regression" and ds.metric == "rmse"
    assert len(ds) == 4 and ds.skipped == []
    np.testing.assert_allclose(ds.labels[:, 0], [0.5, -1.6, 0.0, 1.1], rtol=1e-6)
    assert ds.name == "sol"


def test_classification_multitask_with_missing_labels(tmp_path):
    text = "mol_id,SMILES,a,b\nm1,CCO,1,\nm2,CCN,0,1\nm3,CCC,,\nm4,CCCl,1,0\nm5,c1ccccc1,0,NA\n"
    with pytest.warns(DataWarning, match="1 no labels"):
        ds = load_dataset(write(tmp_path, "cls.csv", text), progress=False)
    assert ds.task == "classification" and ds.metric == "roc_auc"
    assert ds.target_names == ("a", "b") and ds.spec.smiles_column == "SMILES"
    assert ds.rows.tolist() == [0, 1, 3, 4]
    assert [(s.row, s.smiles, s.reason) for s in ds.skipped] == [(2, "CCC", "no labels")]
    assert ds.label_mask.tolist() == [[True, False], [True, True], [True, True], [True, False]]
    b = ds.batch()
    assert b.y_mask.tolist() == ds.label_mask.tolist()


def test_smiles_column_found_by_values_and_targets_given(tmp_path):
    text = "compound,activity,other\nCCO,1.5,3\nc1ccccc1,2.5,4\nCC(=O)O,0.1,5\nCCN,0.2,9\n"
    ds = load_dataset(write(tmp_path, "x.csv", text), targets=["activity"], progress=False)
    assert ds.spec.smiles_column == "compound" and ds.target_names == ("activity",)


def test_gzip_detected_by_content(tmp_path):
    for name in ("a.csv.gz", "b.csv"):
        ds = load_dataset(write(tmp_path, name, REG, gz=True), targets=("logS",), progress=False)
        assert len(ds) == 4


def test_bad_rows_skipped_and_reported_once(tmp_path):
    text = "smiles,y\nCCO,1\nnot_a_smiles,2\n,3\nC1CC,4\nCCCCCCCCCCCC,5\nCCN,abc\n"
    with pytest.raises(GradscopeError, match="no numeric target"):  # 'abc' makes y non-numeric
        load_dataset(write(tmp_path, "bad0.csv", text))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_dataset(write(tmp_path, "bad.csv", text), targets=["y"], max_atoms=10, progress=False)
    lines = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "skipped 5 of 6 rows" in lines[0] and "1 non-numeric label" in lines[0]
    reasons = {s.row: s.reason for s in ds.skipped}
    assert reasons[1] == reasons[3] == "unparseable SMILES"
    assert reasons[2] == "empty SMILES"
    assert reasons[4].startswith("too many atoms (12 > max_atoms=10)")
    assert reasons[5] == "no labels"  # 'abc' is not a number → missing
    assert ds.rows.tolist() == [0] and ds.smiles == ["CCO"]


def test_errors_are_one_line(tmp_path):
    cases = [
        (lambda: load_dataset(tmp_path / "missing.csv"), "not found"),
        (lambda: load_dataset(write(tmp_path, "a.csv", REG), smiles_column="nope"), "column 'nope' not found"),
        (lambda: load_dataset(write(tmp_path, "b.csv", REG), targets=["nope"]), "column 'nope' not found"),
        (lambda: load_dataset(write(tmp_path, "c.csv", "smiles,y\nxx,1\nyy,2\n"), progress=False), "no usable molecule"),
        (lambda: load_dataset(write(tmp_path, "d.csv", "name,y\nfoo,1\nbar,2\n")), "cannot find a SMILES column"),
        (lambda: load_dataset(write(tmp_path, "e.csv", "smiles,name\nCCO,x\n")), "no numeric target"),
        (lambda: load_dataset(write(tmp_path, "f.csv", "smiles,y\nCCO,2\nCCN,0\n"), task="classification"),
         "must be 0 or 1"),
        (lambda: load_dataset("no_such_dataset"), "unknown dataset"),
        (lambda: load_dataset(write(tmp_path, "g.csv", "")), "empty"),
        (lambda: load_dataset(write(tmp_path, "h.csv", "smiles,y\nCCO," + "1" * 200_000 + "\n")),
         "not a readable CSV"),  # a field over csv's size limit (a binary file read as text)
    ]
    for call, message in cases:
        with pytest.raises(GradscopeError, match=message) as info:
            call()
        assert "\n" not in str(info.value)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_a_one_line_error(tmp_path):
    path = write(tmp_path, "locked.csv", REG)
    path.chmod(0)
    with pytest.raises(GradscopeError, match="cannot read .*locked.csv: Permission denied") as info:
        load_dataset(path)
    assert "\n" not in str(info.value)


def test_task_given_overrides_inference(tmp_path):
    ds = load_dataset(write(tmp_path, "h.csv", "smiles,y\nCCO,1\nCCN,0\nCCC,1\n"), task="regression", progress=False)
    assert ds.task == "regression" and ds.metric == "rmse"


def test_table_details(tmp_path):
    t = read_table(write(tmp_path, "dup.csv", "\ufeffsmiles;x;x\nCCO;1;2\n\nCCN;3\n"))
    assert t.header == ("smiles", "x", "x.1")  # BOM stripped, ';' detected, duplicates renamed
    assert t.rows == (("CCO", "1", "2"), ("CCN", "3", ""))  # blank line dropped, short row padded
    assert len(t.sha256) == 64


def test_rdkit_stderr_is_silenced(tmp_path, capfd):
    text = "smiles,y\nCCO,1\nC1CC,2\nC(C)(C)(C)(C)C,3\nCCN,1\n"  # unclosed ring; pentavalent carbon
    with pytest.warns(DataWarning, match="2 unparseable"):
        load_dataset(write(tmp_path, "noisy.csv", text), progress=False)
    err = capfd.readouterr().err
    assert "SMILES Parse Error" not in err and "valence" not in err.lower()
    from rdkit import Chem

    Chem.MolFromSmiles("C1CC")  # logging is back on afterwards (RDKit's own default)
    assert "C1CC" in capfd.readouterr().err
