"""The scripts in ``examples/`` run end to end on a small Myntra-shaped folder (tiny models, real JPEGs)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from smar_sdk import SMARModel
from tests.conftest import run_python

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(script: str, *args: str | Path, home: Path) -> str:
    """Run ``examples/<script>`` as a user would; its own feature cache lives under ``home``."""
    return run_python(EXAMPLES / script, *args, home=home)


def ranked_lines(output: str) -> list[str]:
    return re.findall(r"^\s+\d+\.\s+-?\d\.\d{3}\s+\S.*$", output, flags=re.MULTILINE)


def test_quickstart_indexes_a_catalog_and_answers_its_queries(myntra_like: Path, tiny_model_dir: Path,
                                                              tmp_path: Path) -> None:
    output = run_example("quickstart.py", "--catalog", myntra_like / "catalog.jsonl", "--limit", "12",
                         "--model", tiny_model_dir, home=tmp_path)
    assert "indexed 12 products (0 already stored unchanged, 0 rejected)" in output
    assert "the collection holds 12" in output
    for query in ('"black casual shoes for men"', '"red heels"  filter {\'gender\': \'Women\'}', '"blue denim jeans"'):
        assert query in output
    assert len(ranked_lines(output)) == 5 + 5 + 5  # k = 5; 6 of the 12 products are women's, all with a title


def test_milvus_example_runs_the_same_calls_on_milvus_lite(myntra_like: Path, tiny_model_dir: Path,
                                                           tmp_path: Path) -> None:
    output = run_example("milvus_server.py", "--catalog", myntra_like / "catalog.jsonl", "--limit", "0",
                         "--model", tiny_model_dir, home=tmp_path)
    assert "indexed 30 products" in output and "the collection holds 30" in output
    assert len(ranked_lines(output)) == 15


def test_compare_modalities_scores_both_views_on_the_test_split(myntra_like: Path, tiny_model_dir: Path,
                                                                tmp_path: Path) -> None:
    output = run_example("compare_modalities.py", "--data", myntra_like, "--limit", "0", "--model", tiny_model_dir,
                         "--no-colour", "--paraphrased", home=tmp_path)
    assert "SMAR fused: indexed 10 products (fused view)" in output
    assert " text-only: indexed 10 products (text view)" in output
    assert "10 labelled queries (test_queries_paraphrased.jsonl) over 10 products (catalog_no_colour.jsonl)" in output
    scores = re.findall(r"^\s+(SMAR fused|text-only)((?:\s+\d\.\d{3})+)$", output, flags=re.MULTILINE)
    assert [name for name, _ in scores] == ["SMAR fused", "text-only"]
    assert all(len(values.split()) == 4 for _, values in scores)  # nDCG@10, Recall@10, Recall@50, MRR@10
    assert output.count('"nice ') == 3  # --show 3 labelled queries, side by side


def test_compare_modalities_names_a_missing_data_folder(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(EXAMPLES / "compare_modalities.py"), "--data", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert f"{tmp_path / 'catalog.jsonl'} not found" in result.stderr and "--data" in result.stderr


def test_train_your_own_trains_saves_and_compares_with_the_shipped_model(myntra_like: Path, tiny_model_dir: Path,
                                                                         tmp_path: Path) -> None:
    out = tmp_path / "my-model"
    output = run_example("train_your_own.py", "--data", myntra_like, "--model-config", tiny_model_dir / "config.json",
                         "--limit", "0", "--eval-limit", "0", "--epochs", "2", "--batch-size", "8",
                         "--query-variants", "0", "--out", out, home=tmp_path)
    steps = 2 * (20 // 8)  # 2 epochs of 2 full batches
    loss = r"\d+\.\d{3}"
    assert re.search(rf"trained on 20 pairs over 20 products: loss {loss} -> {loss} in {steps} steps", output)
    assert f"saved to {out}" in output
    assert SMARModel.load(out).config.text_encoder == SMARModel.load(tiny_model_dir).config.text_encoder
    assert "10 labelled queries (test_queries.jsonl) over 10 held-out products" in output
    assert re.search(r"^\s+your model(\s+\d\.\d{3}){4}$", output, flags=re.MULTILINE)
    assert re.search(r"^\s+shipped model(\s+\d\.\d{3}){4}$", output, flags=re.MULTILINE)
    assert list((tmp_path / ".cache" / "smar-sdk" / "features").iterdir())  # the features were cached, in HOME
