"""The notebooks run top to bottom (outputs are not committed, so they cannot rot silently)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _run(name: str, env: dict[str, str] | None = None) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def _outputs(nb: nbformat.NotebookNode) -> list[str]:
    return [o.get("output_type") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def test_quickstart_runs_and_draws_each_analysis() -> None:
    nb = _run("01_quickstart.ipynb")
    outputs = _outputs(nb)
    assert "error" not in outputs
    images = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                 if "image/png" in o.get("data", {}))
    assert images >= 6


def test_real_cartels_notebook(shared_data) -> None:
    nb = _run("02_real_cartels.ipynb", {"COLLUSION_CARTELS": str(shared_data / "cartels")})
    assert "error" not in _outputs(nb)
