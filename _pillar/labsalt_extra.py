"""
The extra pillar of one ``labsalt`` run (``--pillar-file FILE``, ``--pillar-file -``,
``--pillar-data``): a YAML mapping in a 0600 file of that run's own in labsalt's
private config directory, merged over the pillar tree like Salt's ``pillar=``
argument would be, but without ever appearing on a command line.  labsalt names
the file in ``$LABSALT_EXTRA_PILLAR`` for the Salt process it starts (so
concurrent runs sharing a config directory never read each other's pillar) and
removes it when the run ends.  No variable, or a file outside the configured
directory, is an empty pillar.
"""

import os

import salt.utils.yaml

__virtualname__ = "labsalt_extra"

ENV = "LABSALT_EXTRA_PILLAR"


def __virtual__():
    return __virtualname__


def ext_pillar(minion_id, pillar, conf_dir):  # noqa: ARG001 (Salt's ext_pillar signature)
    path = os.environ.get(ENV)
    if not path or os.path.dirname(os.path.realpath(path)) != os.path.realpath(conf_dir):
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            data = salt.utils.yaml.safe_load(handle)
    except FileNotFoundError:
        return {}
    return data if isinstance(data, dict) else {}
