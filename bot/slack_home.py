"""App Home: the matrix, my environments, what waits for my decision."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import views
from bot.slack_face import FaceBase
from environments.registry import record as rec

log = logging.getLogger(__name__)


class HomeFlow(FaceBase):
    """App Home: the matrix, my environments, what waits for my decision."""

    def publish_home(self, client: WebClient, user: str) -> None:
        person = self.actor(user).person
        with self.rt.database.read() as conn:
            matrix = rec.matrix(conn)
            mine = rec.list_environments(conn, owner=person)
            waiting = [
                a
                for a in rec.list_approvals(conn)
                if person in self.rt.catalog.members(a.approvers)
                and person != a.requested_by
                and person not in {d.person for d in a.decisions}
            ]
        try:
            client.views_publish(
                user_id=user, view=views.home(self.rt.catalog, matrix, mine, waiting)
            )
        except SlackApiError as exc:
            log.warning("views.publish failed: %s", exc.response.get("error"))
