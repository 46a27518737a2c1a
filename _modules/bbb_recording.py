"""
BigBlueButton's raw recordings: found and purged when the lab disables recording.

BBB keeps raw material of meetings even when they were not meant to be recorded
(bigbluebutton#9202: raw files stay in ``/var/bigbluebutton/recording/raw`` and
the media directories after recording is disabled).  With recording disabled,
the formula purges them.

Only BBB's own recording directories are touched (``RAW_DIRS``, relative to
``/var``: BBB's ``recording_dir``/raw and the ``raw_*_src``/``*_video_src``/
``*_screenshare_src``/``*_audio_src`` directories of
``/usr/local/bigbluebutton/core/scripts/bigbluebutton.yml``, BBB 2.2 to 3.0), and
in them only entries named after a BBB internal meeting ID (40 hex digits, ``-``,
13 digits: the names ``bbb-record --list``/``--deleteall`` match), directly in
the directory.  A symlink entry is removed as a link, never followed.  Entries
that changed within the last ``quiet_minutes`` (a meeting still running or being
archived) are kept.  Published recordings (``/var/bigbluebutton/published``) are
not raw material and stay.
"""

import os
import re
import shutil
import time

from salt.exceptions import CommandExecutionError

__virtualname__ = "bbb_recording"

RAW_DIRS = (
    "bigbluebutton/recording/raw",  # recording_dir/raw: archived raw meetings
    "freeswitch/meetings",  # raw_audio_src
    "kurento/recordings",  # kurento_video_src (BBB 2.2-2.7)
    "kurento/screenshare",  # kurento_screenshare_src
    "mediasoup/recordings",  # mediasoup_video_src (BBB 2.6+)
    "mediasoup/screenshare",  # mediasoup_screenshare_src
    "lib/bbb-webrtc-recorder/recordings",  # webrtc_recorder_video_src (BBB 3.0)
    "lib/bbb-webrtc-recorder/screenshare",  # webrtc_recorder_screenshare_src
    "lib/bbb-webrtc-recorder/audio",  # webrtc_recorder_audio_src
    "bigbluebutton/deskshare",  # raw_deskshare_src
)
MEETING_ID = re.compile(r"[0-9a-f]{40}-[0-9]{13}(?![0-9])")


def __virtual__():
    return __virtualname__


def _newest_mtime(path):
    newest = os.lstat(path).st_mtime
    if os.path.isdir(path) and not os.path.islink(path):
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                try:
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
                except FileNotFoundError:
                    continue
    return newest


def raw_recordings(var="/var", quiet_minutes=60):
    """
    The raw recording entries in BBB's recording directories under ``var``:
    ``{"purgeable": [...], "recent": [...]}`` (recent: changed within
    ``quiet_minutes``).  Read-only.

    CLI Example:

    .. code-block:: bash

        salt-call bbb_recording.raw_recordings
    """
    if not os.path.isabs(var) or ".." in var.split("/"):
        raise CommandExecutionError(f"{var!r} is not an absolute path")
    cutoff = time.time() - int(quiet_minutes) * 60
    found = {"purgeable": [], "recent": []}
    for rel in RAW_DIRS:
        directory = os.path.join(var, rel)
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            if not MEETING_ID.match(name):
                continue
            path = os.path.join(directory, name)
            try:
                recent = _newest_mtime(path) > cutoff
            except FileNotFoundError:
                continue
            found["recent" if recent else "purgeable"].append(path)
    return found


def purge_raw(var="/var", quiet_minutes=60, test=False):
    """
    Remove the purgeable raw recording entries (see :py:func:`raw_recordings`);
    return ``{"removed": [...], "kept": [...]}`` (with ``test=True`` what would
    be removed; nothing is touched).

    CLI Example:

    .. code-block:: bash

        salt-call bbb_recording.purge_raw test=True
    """
    found = raw_recordings(var, quiet_minutes)
    if not test:
        for path in found["purgeable"]:
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise CommandExecutionError(f"cannot remove {path}: {exc}") from None
    return {"removed": found["purgeable"], "kept": found["recent"]}
