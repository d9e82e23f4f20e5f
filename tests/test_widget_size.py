"""The comment widget's budget and hygiene, read from the shipped files (no browser).

The widget must stay at most 6 KB gzipped: it is what every article page downloads on top of
the static HTML. The files are shipped as written (no build step), so the budget is measured on
exactly those bytes, gzipped at the level a static server or a pre-compressing step would use.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parent.parent / "theme" / "static" / "js"
BUDGET = 6144  # bytes, gzipped
SCRIPTS = ["tellmemore.js", "counts.js"]


def gzipped_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9))


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_fits_the_budget(name: str) -> None:
    size = gzipped_size(JS / name)
    print(f"{name}: {(JS / name).stat().st_size} bytes, {size} bytes gzipped (budget {BUDGET})")
    assert size <= BUDGET, f"{name} is {size} bytes gzipped, over the {BUDGET}-byte budget"


@pytest.mark.parametrize("name", SCRIPTS)
def test_no_eval_and_no_markup_from_strings(name: str) -> None:
    source = (JS / name).read_text(encoding="utf-8")
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", source, flags=re.S)  # comments may name things
    for forbidden in ("eval(", "new Function", "document.write", "insertAdjacentHTML",
                      "outerHTML", "setAttribute('on", 'setAttribute("on', "javascript:"):
        assert forbidden not in code, f"{name} uses {forbidden}"
    assert re.search(r"setTimeout\(\s*['\"]", code) is None, "setTimeout with a string is eval"
    # The one innerHTML: the service's sanitised rendering of a comment, nothing else.
    assignments = re.findall(r"\.innerHTML\s*=\s*([^;]+);", code)
    assert assignments == (["c.html"] if name == "tellmemore.js" else []), assignments


@pytest.mark.parametrize("name", SCRIPTS)
def test_plain_modern_javascript(name: str) -> None:
    source = (JS / name).read_text(encoding="utf-8")
    assert re.search(r"^\s*(import|export)\b", source, flags=re.M) is None, "no modules"
    assert "require(" not in source, "no bundler left-overs"
    assert source.lstrip().startswith("/*"), "a header says what the file is"
