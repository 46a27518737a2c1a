"""_output/labsalt.py: a failed render as one line per distinct error."""

import importlib.util

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("labsalt_output", REPO / "_output" / "labsalt.py")
output = importlib.util.module_from_spec(spec)
spec.loader.exec_module(output)

JINJA = """Rendering SLS 'base:openmpi.config.file' failed: Problem running salt function in \
Jinja template: openmpi:policy: 'numaa' is not one of numa, l3cache; line 2

---
{%- set mapdata = salt["labsalt.mapdata"](tpldir.split("/")[0]) %}    <======================
[...]
---"""


def test_error_line_is_the_problem_alone():
    assert output.error_line(JINJA) == "openmpi:policy: 'numaa' is not one of numa, l3cache"


def test_the_same_error_from_every_including_sls_is_printed_once():
    other = JINJA.replace("openmpi.config.file", "openmpi.package.install")
    undefined = "Rendering SLS 'base:x' failed: Jinja variable 'y' is undefined; line 1\n\n---\n"
    assert output.distinct_errors([JINJA, other, undefined, JINJA]) == [
        "openmpi:policy: 'numaa' is not one of numa, l3cache",
        "Jinja variable 'y' is undefined",
    ]
