"""The training corpus of the shipped quality models: Python's documentation and standard library.

Documents, not a token stream, are the unit of every split, so no held-out text leaks into training
through a window that straddles two documents:
- `evaluation`: the topics and files the shipped texts and traces were made from (named in
  `workloads/texts/*.txt.json`); `hwsim quality` measures on these.
- `validation`: a further ~4% of the remaining documents, chosen by a hash of their names (stable
  across runs and machines), for the held-out perplexity and entropy correlation while training.
- `train`: the rest.
Prose is `pydoc_data.topics` plus the docstrings of the standard-library modules, classes and
functions (the library's own reference text); code is the `.py` files themselves.
"""

from __future__ import annotations

import ast
import hashlib
import json
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

#: Standard-library folders left out: tests, GUIs and vendored packages are not the library code the
#: traces sample (the Mamba-1 model's training, `hwsim.quality.train`, uses the same rule).
SKIP_PARTS = ("test", "tests", "idlelib", "site-packages", "turtledemo", "lib2to3", "tkinter", "ensurepip")
VALIDATION_PERCENT = 4
#: Docstrings shorter than this are labels ("Return x."), not prose.
MIN_DOCSTRING_CHARS = 200


@dataclass(frozen=True)
class Document:
    domain: str   # "prose" or "code"
    name: str     # "topic:assert", "docstrings:Lib/json/decoder.py", "Lib/json/decoder.py"
    text: str
    split: str    # "train", "validation" or "evaluation"


def held_out(texts_dir: Path) -> tuple[set[str], set[str]]:
    """Topics and `Lib/...` files used by the shipped texts: the evaluation split."""
    topics: set[str] = set()
    files: set[str] = set()
    for sidecar in sorted(texts_dir.glob("*.txt.json")):
        meta = json.loads(sidecar.read_text())
        topics.update(meta.get("topics", []))
        files.update(meta.get("files", []))
    return topics, files


def _split(name: str, evaluation: bool) -> str:
    if evaluation:
        return "evaluation"
    bucket = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 100
    return "validation" if bucket < VALIDATION_PERCENT else "train"


def docstrings(source: str) -> str:
    """The module, class and function docstrings of one file, longest-first order kept as written."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ""
    parts = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            text = ast.get_docstring(node)
            if text and len(text) >= MIN_DOCSTRING_CHARS:
                parts.append(text)
    return "\n\n".join(parts)


def documents(texts_dir: Path, *, code_bytes: int | None = None) -> list[Document]:
    """Every document with its domain and split, in a fixed order (topics, then files by path)."""
    import pydoc_data.topics

    topics_out, files_out = held_out(texts_dir)
    out = [Document("prose", f"topic:{key}", pydoc_data.topics.topics[key],
                    _split(f"topic:{key}", key in topics_out))
           for key in sorted(pydoc_data.topics.topics)]
    lib = Path(sysconfig.get_paths()["stdlib"])
    total = 0
    for path in sorted(lib.rglob("*.py")):
        relative = path.relative_to(lib)
        if any(part in SKIP_PARTS for part in relative.parts[:-1]):
            continue
        rel = "Lib/" + relative.as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        if code_bytes is not None and total + len(text) > code_bytes:
            break
        total += len(text)
        split = _split(rel, rel in files_out)
        out.append(Document("code", rel, text, split))
        prose = docstrings(text)
        if prose:  # a file's docstrings share its split: they are the same text
            out.append(Document("prose", f"docstrings:{rel}", prose, split))
    return out


def provenance(docs: list[Document]) -> dict:
    """What the corpus is, for a model's training record."""
    summary: dict = {"python_version": sys.version.split()[0],
                     "licence": "PSF-2.0 (Python Software Foundation License Version 2)",
                     "sources": "pydoc_data.topics; standard-library *.py files (sorted paths, skipping "
                                f"{list(SKIP_PARTS)}); their docstrings of >= {MIN_DOCSTRING_CHARS} chars",
                     "split_rule": f"evaluation = the shipped texts' topics and files; validation = "
                                   f"sha256(name) % 100 < {VALIDATION_PERCENT}; train = the rest"}
    for split in ("train", "validation", "evaluation"):
        for domain in ("prose", "code"):
            chosen = [d for d in docs if d.split == split and d.domain == domain]
            summary[f"{split}_{domain}_documents"] = len(chosen)
            summary[f"{split}_{domain}_chars"] = sum(len(d.text) for d in chosen)
    return summary
