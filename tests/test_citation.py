"""CITATION.cff agrees with what it copies: the library's version, the repository URL of
_config.yml, the paper in references.bib, the licence files, and the citation README.md shows
(generated from it by cffconvert), so that none of them can drift from the others."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import microcircuit

yaml = pytest.importorskip("yaml", reason="reading CITATION.cff and _config.yml needs PyYAML (jupyter-book brings it)")

ROOT = Path(__file__).resolve().parent.parent
CFF_TEXT = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
CFF = yaml.safe_load(CFF_TEXT)
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))


def _citing() -> str:
    """README's "Citing" section, up to the next section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "\n## Citing\n" in readme
    return re.split(r"\n## ", readme.split("\n## Citing\n", 1)[1])[0]


def _block(kind: str) -> str:
    """The one fenced ```kind block of the Citing section."""
    blocks = re.findall(rf"^```{kind}\n(.*?)^```$", _citing(), re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, f"README's Citing section should hold one ```{kind} block"
    return blocks[0]


def _bibtex_fields(entry: str) -> dict:
    return dict(re.findall(r"^\s*([a-z]+)\s*=\s*\{(.*)\},?\s*$", entry, re.MULTILINE))


def test_citation_names_the_library_version_and_the_repository():
    assert CFF["cff-version"] == "1.2.0"
    assert str(CFF["version"]) == microcircuit.__version__
    assert CFF["repository-code"] == CONFIG["repository"]["url"]
    assert CFF["authors"] == [{"name": CONFIG["author"]}]


def test_readme_shows_the_citation_generated_from_it():
    assert "CITATION.cff" in _citing()
    fields = _bibtex_fields(_block("bibtex"))
    assert fields["title"] == CFF["title"]
    assert fields["author"] == CFF["authors"][0]["name"]
    assert fields["url"] == CFF["repository-code"]
    assert (fields["year"], fields["month"]) == (str(CFF["date-released"].year), str(CFF["date-released"].month))
    # cffconvert's BibTeX has no version field: the APA-like line beside it carries it
    text = _block("text").strip()
    assert CFF["title"] in text and f"(version {microcircuit.__version__})" in text


def test_readme_citation_is_exactly_what_cffconvert_writes():
    cffconvert = pytest.importorskip("cffconvert", reason="regenerating README's citation needs cffconvert")
    citation = cffconvert.Citation(CFF_TEXT)
    assert _block("bibtex") == citation.as_bibtex()
    assert _block("text") == citation.as_apalike()


def test_the_paper_it_follows_is_the_one_in_references_bib():
    bib = (ROOT / "references.bib").read_text(encoding="utf-8")
    entry = re.search(r"@misc\{yang2022microcircuits,(.*?)\n\}", bib, re.DOTALL).group(1)
    fields = _bibtex_fields(entry)
    (paper,) = [r for r in CFF["references"] if r["title"] == fields["title"]]
    authors = " and ".join(f"{a['family-names']}, {a['given-names']}" for a in paper["authors"])
    assert authors == fields["author"] and str(paper["year"]) == fields["year"]
    assert {"type": "other", "value": f"arXiv:{fields['eprint']}"}.items() <= paper["identifiers"][0].items()
    assert paper["url"] == fields["url"]


def test_the_licences_are_those_of_the_licence_files():
    """The code is MIT, the book's text CC-BY-4.0; CFF reads a list of licences as OR, so none is listed."""
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert "(CC-BY-4.0)" in (ROOT / "LICENSE-TEXT.md").read_text(encoding="utf-8")
    assert "license" not in CFF
    message = " ".join(CFF["message"].split())
    assert "is MIT (see LICENSE)" in message and "are CC-BY-4.0 (see LICENSE-TEXT.md)" in message
