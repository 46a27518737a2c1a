"""
Keep an ELF library patched (or reverted) with an elfpatch recipe.

Thin over the ``elfpatch`` execution module: ``elfpatch.plan`` predicts, the
state compares and in test mode reports what would change; ``elfpatch.apply``
/ ``elfpatch.revert`` write.  Changes are reported as old/new bytes and
sha256, so a package upgrade that replaced the library shows up as a new
``sha256: old`` and is patched again (or fails loudly when the new build is
unknown or no longer matches the recipe).

.. code-block:: yaml

    /usr/lib/x86_64-linux-gnu/libopen-rte.so.40:
      elfpatch.patched:
        - recipe: openmpi-singleton-numa
"""

import os

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "elfpatch"


def __virtual__():
    # Always load: the execution module may only become available later in the
    # same run (pyelftools installed by a pkg state with reload_modules).
    return __virtualname__


def _predict_without(name, what, plan_kwargs):
    """
    Test mode on a host where something the state needs is not installed yet
    (the same highstate installs it): predict the change instead of failing.
    """
    ret = {"name": name, "result": None, "changes": {}, "comment": ""}
    if what == "module":
        ret["comment"] = (
            f"{name} would be checked and patched once pyelftools is installed "
            "(python3-pyelftools, installed by the same highstate); not predictable further"
        )
    elif what == "library":
        ret["comment"] = (
            f"{name} does not exist yet (its package is not installed); it would be patched "
            "after the package state installs it"
        )
    else:
        try:
            info = __salt__["elfpatch.status"](
                name,
                plan_kwargs["recipe"],
                recipes=plan_kwargs.get("recipes"),
                known_sha256=plan_kwargs.get("known_sha256"),
            )
        except (CommandExecutionError, SaltInvocationError) as exc:
            return {"name": name, "result": False, "changes": {}, "comment": str(exc)}
        if info["state"] == "unknown":
            ret["result"] = False
            ret["comment"] = (
                f"{name}: the located bytes {info['bytes']} are neither original nor patched"
            )
            return ret
        if not info["known_build"] and not plan_kwargs.get("allow_unknown"):
            ret["result"] = False
            ret["comment"] = (
                f"{name}: unknown build (original sha256 {info['original_sha256']}); "
                "add it to known_sha256 or allow unknown builds"
            )
            return ret
        ret["changes"] = {
            "bytes": {"old": info["bytes"], "new": "decided at run time from hwloc's topology"},
            "build": info["build"],
        }
        ret["comment"] = (
            f"{name} would be patched; the hwloc type of the NUMA nodes' parent is decided "
            "when the state runs, after hwloc is installed (lstopo-no-graphics is missing here)"
        )
    return ret


def _run(name, fun, plan_kwargs, write_kwargs, done_comment):  # noqa: PLR0911
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    test = __opts__["test"]
    if "elfpatch.plan" not in __salt__:
        if test:
            return _predict_without(name, "module", plan_kwargs)
        ret["comment"] = (
            "the elfpatch execution module is not available: it needs pyelftools "
            "(Debian package python3-pyelftools, or pip install pyelftools)"
        )
        return ret
    if test and not os.path.exists(name):
        return _predict_without(name, "library", plan_kwargs)
    needs_topology = fun == "elfpatch.apply" and plan_kwargs.get("value") is None
    if test and needs_topology and not __salt__["topology.can_read_topology"]():
        return _predict_without(name, "topology", plan_kwargs)
    try:
        planned = __salt__["elfpatch.plan"](name, **plan_kwargs)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["comment"] = str(exc)
        return ret
    if not planned["changed"]:
        ret["result"] = True
        ret["comment"] = done_comment(planned)
        return ret
    changes = {
        "bytes": {"old": planned["old"], "new": planned["new"]},
        "sha256": dict(planned["sha256"]),
        "offset": planned["offset"],
        "build": planned["build"],
    }
    if test:
        ret["result"] = None
        ret["changes"] = changes
        ret["comment"] = f"{planned['path']} would be changed at offset {planned['offset']:#x}"
        return ret
    try:
        done = __salt__[fun](name, **write_kwargs)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["comment"] = str(exc)
        return ret
    ret["result"] = True
    if not done["changed"]:
        # Another run changed the file between our plan and our lock.
        ret["comment"] = done_comment(done) + " (by a concurrent run)"
        return ret
    changes["sha256"] = dict(done["sha256"])
    changes["bytes"] = {"old": done["old"], "new": done["new"]}
    ret["changes"] = changes
    ret["comment"] = (
        f"{done['path']} changed at offset {done['offset']:#x}; backup {done.get('backup')}"
    )
    return ret


def patched(  # noqa: PLR0917  (Salt passes state arguments by name)
    name,
    recipe,
    value=None,
    recipes=None,
    known_sha256=None,
    allow_unknown=False,
    allow_hardlinks=False,
    backup_dir=None,
):
    """
    Make sure library ``name`` carries the ``recipe`` patch with ``value``
    (default: what the recipe reads from the live system, e.g. the NUMA
    nodes' parent type).

    recipe
        Name of a recipe in elfpatch_recipes.yaml, e.g. ``openmpi-singleton-numa``.
    value
        Replacement value by name (``Die``, ``Group``, ``Package``) or number.
    recipes
        Another recipes file (path or ``salt://`` URL).
    known_sha256
        Extra sha256 values of original builds to accept.
    allow_unknown
        Patch builds whose original sha256 is not known, when the recipe
        matches them unambiguously.
    allow_hardlinks
        Replace a file that has other hard links (they keep the old content).
    backup_dir
        Where originals are kept (default /var/lib/labsalt/elfpatch).
    """
    common = {"recipe": recipe, "recipes": recipes, "known_sha256": known_sha256}
    common["allow_unknown"] = allow_unknown
    write = dict(common, value=value, allow_hardlinks=allow_hardlinks, backup_dir=backup_dir)
    return _run(
        name,
        "elfpatch.apply",
        dict(common, value=value),
        write,
        lambda p: f"{p['path']} is already patched ({p['new']}, build {p['build']})",
    )


def reverted(  # noqa: PLR0917
    name,
    recipe,
    recipes=None,
    known_sha256=None,
    allow_unknown=True,
    allow_hardlinks=False,
    backup_dir=None,
):
    """
    Make sure library ``name`` holds the original bytes of ``recipe``
    (byte-identical to the original build).
    """
    common = {"recipe": recipe, "recipes": recipes, "known_sha256": known_sha256}
    common["allow_unknown"] = allow_unknown
    write = dict(common, allow_hardlinks=allow_hardlinks, backup_dir=backup_dir)
    return _run(
        name,
        "elfpatch.revert",
        dict(common, revert=True),
        write,
        lambda p: f"{p['path']} is original ({p['old']}, build {p['build']})",
    )
