"""Helpers over Salt state results ({state_key: {result, changes, comment, ...}})."""


def results(ret):
    """
    Accept a highstate dict (bare, under one minion id, or salt-factories'
    StateResult wrappers) and return the states; a list means render errors.
    """
    ret = getattr(ret, "raw", ret)
    if isinstance(ret, dict) and len(ret) == 1:
        (only,) = ret.values()
        nested = isinstance(only, dict) and all(isinstance(v, dict) for v in only.values())
        if nested and any("__run_num__" in v or "result" in v for v in only.values()):
            return only
    if isinstance(ret, list):
        raise AssertionError("state run failed to compile:\n" + "\n".join(map(str, ret)))
    return ret


def failed(ret):
    return {k: v for k, v in results(ret).items() if v.get("result") is False}


def changed(ret):
    return {k: v for k, v in results(ret).items() if v.get("changes")}


def assert_ok(ret):
    """Every state succeeded (True, or None in test mode); show the failures otherwise."""
    bad = failed(ret)
    assert not bad, "failed states:\n" + "\n".join(
        f"{k}: {v.get('comment')}" for k, v in bad.items()
    )
    return results(ret)


def assert_no_changes(ret):
    assert_ok(ret)
    moved = changed(ret)
    assert not moved, "states still changing on re-apply:\n" + "\n".join(
        f"{k}: {v['changes']}" for k, v in moved.items()
    )
