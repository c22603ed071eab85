"""A small Label Studio HTTP API client (httpx): projects, task import, annotations, export.

Authentication takes either kind of Label Studio token:

- a legacy token (40 hex characters; what `brandmon label serve` sets up): sent as
  `Authorization: Token <token>`;
- a personal access token (a JWT refresh token, Label Studio >= 1.17): exchanged once at
  `/api/token/refresh` for an access token, sent as `Authorization: Bearer <access>`.

Every failure is a LabelStudioError that names the server and says what to do.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import httpx

#: Tasks fetched per page when listing a project's tasks.
PAGE_SIZE = 500


class LabelStudioError(RuntimeError):
    """Label Studio could not be reached or refused a request."""


def is_personal_access_token(token: str) -> bool:
    """A JWT (three dot-separated parts) is a personal access token; else a legacy one."""
    return token.count(".") == 2


class LabelStudioClient:
    """Calls to one Label Studio server as one user."""

    def __init__(self, url: str, token: str, timeout: float = 60.0) -> None:
        if not token:
            raise LabelStudioError(
                "no Label Studio token: set BRANDMON_LABEL_STUDIO_TOKEN or pass --token "
                "(Account & Settings in Label Studio shows it; `brandmon label serve` sets one)"
            )
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)
        self._http.headers["Authorization"] = self._authorization(token)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LabelStudioClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _authorization(self, token: str) -> str:
        if not is_personal_access_token(token):
            return f"Token {token}"
        access = self._send("POST", "/api/token/refresh", json={"refresh": token})
        return f"Bearer {access['access']}"

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise LabelStudioError(
                f"Label Studio at {self.url} did not answer ({exc}): start it with "
                "`brandmon label serve` or set BRANDMON_LABEL_STUDIO_URL"
            ) from exc
        if response.status_code in (401, 403):
            raise LabelStudioError(
                f"Label Studio at {self.url} refused the token ({response.status_code} on "
                f"{path}): check BRANDMON_LABEL_STUDIO_TOKEN; a legacy token needs legacy "
                "tokens enabled in the organization's Access Token Settings"
            )
        if response.is_error:
            raise LabelStudioError(
                f"Label Studio at {self.url}: {method} {path} failed with "
                f"{response.status_code}: {response.text[:500]}"
            )
        return response.json() if response.content else None

    # ------------------------------------------------------------------------- calls

    def whoami(self) -> dict[str, Any]:
        return dict(self._send("GET", "/api/current-user/whoami"))

    def projects(self) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            body = self._send("GET", "/api/projects", params={"page": page, "page_size": 100})
            yield from body["results"]
            if not body.get("next"):
                return
            page += 1

    def find_project(self, title: str) -> dict[str, Any] | None:
        return next((p for p in self.projects() if p["title"] == title), None)

    def create_project(self, title: str, label_config: str, description: str = "") -> Any:
        body = {"title": title, "label_config": label_config, "description": description}
        return self._send("POST", "/api/projects", json=body)

    def ensure_project(self, title: str, label_config: str) -> tuple[dict[str, Any], bool]:
        """(project, created): the project of that title, made with the config if missing."""
        found = self.find_project(title)
        if found is not None:
            return found, False
        return self.create_project(title, label_config), True

    def import_tasks(self, project_id: int, tasks: Sequence[dict[str, Any]]) -> Any:
        """Add tasks (with their predictions) to a project; Label Studio's import summary."""
        return self._send("POST", f"/api/projects/{project_id}/import", json=list(tasks))

    def tasks(self, project_id: int) -> Iterator[dict[str, Any]]:
        """Every task of the project, as the task list API gives them."""
        page, seen = 1, 0
        while True:
            body = self._send(
                "GET",
                "/api/tasks",
                params={"project": project_id, "page": page, "page_size": PAGE_SIZE},
            )
            yield from body["tasks"]
            seen += len(body["tasks"])
            if not body["tasks"] or seen >= body.get("total", seen):
                return
            page += 1

    def predictions(self, project_id: int) -> list[dict[str, Any]]:
        return list(self._send("GET", "/api/predictions", params={"project": project_id}))

    def annotate(self, task_id: int, result: list[dict[str, Any]]) -> Any:
        """Submit an annotation of a task as this client's user."""
        return self._send("POST", f"/api/tasks/{task_id}/annotations", json={"result": result})

    def export(self, project_id: int) -> Any:
        """The project's tasks with their annotations, in Label Studio's JSON export format."""
        return self._send(
            "GET", f"/api/projects/{project_id}/export", params={"exportType": "JSON"}
        )
