"""
Mattermost's BigBlueButton plugin: this BBB server's API URL and secret put into
the plugin's settings through Mattermost's REST API (admin token; the secret is
never returned or shown).
"""

import json
import urllib.error
import urllib.request

from salt.exceptions import CommandExecutionError

__virtualname__ = "bbb_mattermost"


def __virtual__():
    return __virtualname__


def mattermost_plugin_settings(  # noqa: PLR0917  (Salt 3006 cannot pass keyword-only args)
    url, token, bbb_url, bbb_secret=None, plugin_id="bigbluebutton", timeout=10
):
    """
    Put BBB's API URL and secret into the Mattermost BigBlueButton plugin's
    settings through Mattermost's REST API (``PUT /api/v4/config/patch``, needs
    a system admin token).  Return True when the settings changed, False when
    they were already set.

    CLI Example:

    .. code-block:: bash

        salt-call bbb_mattermost.mattermost_plugin_settings https://chat.example.org "$TOKEN" \\
            https://bbb.example.org/bigbluebutton/
    """
    bbb_secret = bbb_secret or __salt__["bbb_config.secret"]()
    base = url.rstrip("/") + "/api/v4/config"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    current = _mm_request(base, headers, timeout)
    plugins = (current.get("PluginSettings") or {}).get("Plugins") or {}
    # The plugin's setting keys BASE_URL and SALT (its plugin.json); Mattermost
    # stores plugin settings with lower-cased keys.
    wanted = {"base_url": __salt__["bbb_api.api_base"](bbb_url).rstrip("/"), "salt": bbb_secret}
    have = plugins.get(plugin_id) or {}
    if all(have.get(k) == v for k, v in wanted.items()):
        return False
    patch = {"PluginSettings": {"Plugins": {plugin_id: {**have, **wanted}}}}
    _mm_request(base + "/patch", headers, timeout, method="PUT", body=patch)
    return True


def _mm_request(url, headers, timeout, method="GET", body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise CommandExecutionError(f"Mattermost {method} {url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CommandExecutionError(f"Mattermost at {url} is not reachable: {reason}") from None
