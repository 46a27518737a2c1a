"""
The extra pillar of one ``labsalt`` run (``--pillar-file FILE``, ``--pillar-file -``,
``--pillar-data``): a YAML mapping in a 0600 file in labsalt's private config
directory, merged over the pillar tree like Salt's ``pillar=`` argument would be,
but without ever appearing on a command line.  labsalt removes the file when the
run ends; a missing file is an empty pillar.
"""

import salt.utils.yaml

__virtualname__ = "labsalt_extra"


def __virtual__():
    return __virtualname__


def ext_pillar(minion_id, pillar, path):  # noqa: ARG001 (Salt's ext_pillar signature)
    try:
        with open(path, encoding="utf-8") as handle:
            data = salt.utils.yaml.safe_load(handle)
    except FileNotFoundError:
        return {}
    return data if isinstance(data, dict) else {}
