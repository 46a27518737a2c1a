"""Salt loader entry point: tells any Salt process where labsalt's modules live."""

from pathlib import Path

HERE = Path(__file__).resolve().parent

# ext_type -> directory in a source checkout (also what an editable install uses)
SOURCE_DIRS = {
    "modules": "_modules",
    "states": "_states",
    "grains": "_grains",
    "wrapper": "_wrapper",
    "pillar": "_pillar",
    "output": "_output",
}


def ext_dir(ext_type):
    """Directory holding labsalt's modules of one loader type (checkout or wheel)."""
    checkout = HERE.parent / SOURCE_DIRS[ext_type]
    if checkout.is_dir():
        return checkout
    return HERE / "ext" / ext_type  # laid out by setup.cfg's package_dir in a wheel


def get_loader_dirs():
    """Return the ``{ext_type: [paths]}`` mapping Salt's loader expects."""
    return {ext_type: [str(ext_dir(ext_type))] for ext_type in SOURCE_DIRS}
