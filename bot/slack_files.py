"""Charts into Slack threads: files upload v2 (get an upload URL, send the bytes, complete)."""

from __future__ import annotations

import logging
from pathlib import Path

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)


def upload_chart(
    client: WebClient, *, channel: str, thread_ts: str | None, path: Path, title: str, alt: str
) -> str | None:
    """Share a PNG in a channel's thread; the file id, or None when Slack refused it.

    `files_upload_v2` runs files.getUploadURLExternal, sends the bytes, then
    files.completeUploadExternal; it is not asked for the file's info afterwards (that would
    need files:read, which the app does not request). A refusal is logged, never raised: the
    verdict's text has been posted before, and a missing chart must not lose it.
    """
    try:
        response = client.files_upload_v2(
            channel=channel,
            thread_ts=thread_ts,
            file=str(path),
            filename=path.name,
            title=title,
            alt_txt=alt[:1000],
            request_file_info=False,
        )
    except SlackApiError as exc:
        log.warning("Slack refused the chart %s: %s", path.name, exc.response.get("error"))
        return None
    except OSError as exc:  # the upload URL itself (a plain HTTPS POST) failed
        log.warning("could not upload the chart %s: %s", path.name, exc)
        return None
    files = response.get("files") or []
    return str(files[0].get("id")) if files else None
