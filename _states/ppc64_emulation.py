"""
State for the ppc64 container images (see the ``ppc64_emulation`` execution module).

.. code-block:: yaml

    localhost/labsalt/debian-ppc64:unstable:
      ppc64_emulation.image_built:
        - recipe_dir: /srv/labsalt/ppc64-containers/debian
        - engine: auto
"""

import os

__virtualname__ = "ppc64_emulation"


def __virtual__():
    return __virtualname__


def image_built(name, recipe_dir, engine="auto", platform="linux/ppc64"):
    """
    Image ``name`` exists and was built from the current recipe.  Where no container
    engine works on this host, nothing is built and the state succeeds with a
    comment that says why (the recipe is still rendered by its file state).
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    found = __salt__["ppc64_emulation.engine"](engine)
    if not found["engine"]:
        ret["comment"] = (
            f"image {name} not built: no working container engine on this host "
            f"({found['reason']}); the recipe in {recipe_dir} is ready for one"
        )
        return ret
    path = found["engine"]
    if __opts__["test"] and not os.path.isdir(recipe_dir):
        ret.update(result=None, changes={"image": name, "old": None, "new": "built"})
        ret["comment"] = f"image {name} would be built with {path} once {recipe_dir} exists"
        return ret
    digest = __salt__["ppc64_emulation.recipe_digest"](recipe_dir)
    label = __salt__["ppc64_emulation.image_label"](path, name)
    if label == digest:
        ret["comment"] = f"image {name} is built from the current recipe"
        return ret
    ret["changes"] = {"image": name, "old": label, "new": digest}
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = f"image {name} would be built with {path}"
        return ret
    __salt__["ppc64_emulation.build"](name, recipe_dir, path, platform)
    ret["comment"] = f"image {name} built with {path}"
    return ret
