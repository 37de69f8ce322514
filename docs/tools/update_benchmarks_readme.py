"""Regenerate ``benchmarks/README.md`` from the benchmark scripts and their latest results.

For every benchmark script (``benchmarks/*.py`` and ``benchmarks/<name>/run.py``) the README
gets its title (the docstring's first line), the commands that reproduce it (the docstring's
``Usage::``/``Run::`` block) and the latest tables: the content of each
``benchmarks/results/<stem>.md`` the script says it writes, or "not yet run".

Run it after a benchmark has written new results::

    .venv/bin/python docs/tools/update_benchmarks_readme.py
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
RESULTS = BENCH / "results"

HEADER = """\
# Benchmarks

Reproducible comparisons of skar's estimators with scikit-learn's density estimators
(`KernelDensity`, `GaussianMixture`) and, where installed, other libraries: side by side, in
one run, on the same machine. They are not tests: they print markdown tables and write them to
`benchmarks/results/`, with their plots. Timings are only comparable within one results file
(same machine, same run); each file names the machine and the command that made it.

Set-up: `make bench` creates `.venv` (CPU PyTorch) and runs the foundation benchmark; every
command below assumes that environment. The full runs of the image and audio benchmarks
need a GPU; `--quick` runs fit a laptop CPU in minutes.

This page is generated from the scripts' docstrings and the latest files in
`benchmarks/results/` by `docs/tools/update_benchmarks_readme.py`; rerun it after a benchmark.
"""


def scripts() -> list[Path]:
    found = sorted(BENCH.glob("*.py")) + sorted(BENCH.glob("*/run.py"))
    return [p for p in found if p.parent.name != "results"]


def docstring(path: Path) -> str:
    try:
        return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    except SyntaxError:  # a script being written right now
        return ""


def usage(doc: str, path: Path) -> str:
    """The indented block after ``Usage::`` or ``Run::``, else a plain command."""
    m = re.search(r"^(?:Usage|Run)::\s*\n\n((?:[ \t]+\S.*\n?|\s*\n)+)", doc, re.M)
    if not m:
        return f".venv/bin/python {path.relative_to(ROOT)}"
    block = textwrap.dedent(m.group(1)).strip("\n")
    rel = str(path.relative_to(ROOT))
    # Normalise "python benchmarks/..." to the environment `make` creates.
    block = re.sub(r"^(?:\.venv/bin/)?python (?=benchmarks/)", ".venv/bin/python ", block,
                   flags=re.M)
    return block.replace(f" {rel}", f" {rel}")


def outputs(doc: str, path: Path) -> list[str]:
    """Result stems (``uci``, ``anomaly``, ...) the script says it writes."""
    stems = re.findall(r"results/([A-Za-z0-9_\-]+)\.md", doc)
    src = path.read_text(encoding="utf-8")
    stems += re.findall(r"RESULTS\s*/\s*f?\"([A-Za-z0-9_\-]+)\.md\"", src)
    name = path.parent.name if path.name == "run.py" else path.stem
    stems = stems or [name]
    return list(dict.fromkeys(stems))


def embed(md_path: Path) -> str:
    """A results file, with its headings pushed two levels down and image links fixed."""
    text = md_path.read_text(encoding="utf-8").strip()
    text = re.sub(r"^(#{1,4}) ", lambda m: "#" * min(len(m.group(1)) + 2, 6) + " ", text,
                  flags=re.M)
    # Links relative to benchmarks/results/ become relative to benchmarks/.
    text = re.sub(r"\]\((?!https?:|/|results/)([^)]+)\)", r"](results/\1)", text)
    if pngs_ignored():
        # The plots are not committed: name them instead of showing a broken image.
        text = re.sub(r"!\[([^\]]*)\]\((results/[^)]+\.png)\)",
                      r"Plot (\1): `\2`, written by the run (not committed).", text)
    return text


def pngs_ignored() -> bool:
    """Whether the repository's .gitignore keeps benchmarks/results/*.png out of git."""
    gitignore = ROOT / ".gitignore"
    if not gitignore.exists():
        return False
    lines = gitignore.read_text(encoding="utf-8").splitlines()
    return any(line.strip() in ("benchmarks/results/*.png", "*.png") for line in lines)


def name_of(path: Path) -> str:
    return path.parent.name if path.name == "run.py" else path.stem


def status(path: Path) -> str:
    found = []
    for stem in outputs(docstring(path), path):
        for p in (RESULTS / f"{stem}.md", RESULTS / f"{stem}_quick.md"):
            if p.exists():
                found.append(f"[`{p.name}`](results/{p.name})")
    return ", ".join(found) or "not yet run"


def summary(paths: list[Path]) -> str:
    rows = ["| benchmark | script | latest results |", "|---|---|---|"]
    for p in paths:
        rel = p.relative_to(BENCH)
        rows.append(f"| [{name_of(p)}](#{name_of(p)}) | [`{rel}`]({rel}) | "
                    f"{status(p)} |")
    return "\n".join(rows) + "\n"


def section(path: Path) -> str:
    doc = docstring(path)
    title = doc.split("\n\n")[0].replace("\n", " ").strip().rstrip(".") or path.stem
    rel = path.relative_to(ROOT)
    lines = [f"## {name_of(path)}", "", f"{title}.", "",
             f"Script: [`{rel}`]({rel.relative_to('benchmarks')}). Reproduce with:", "",
             "```bash", usage(doc, path), "```", ""]
    for stem in outputs(doc, path):
        variants = [RESULTS / f"{stem}.md", RESULTS / f"{stem}_quick.md"]
        present = [p for p in variants if p.exists()]
        if not present:
            lines += [f"`results/{stem}.md`: not yet run.", ""]
            continue
        for p in present:
            kind = " (a `--quick` run)" if p.stem.endswith("_quick") else ""
            lines += [f"### Latest results: [`results/{p.name}`](results/{p.name}){kind}", "",
                      embed(p), ""]
    return "\n".join(lines)


def main() -> None:
    paths = scripts()
    body = [HEADER, summary(paths)] + [section(p) for p in paths]
    out = BENCH / "README.md"
    out.write_text("\n".join(body).rstrip() + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
