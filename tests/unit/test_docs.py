"""`tonestream docs` writes both API documents, complete and self-consistent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from streams.names import STAGE_INPUT


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()


def _resolves(document: dict[str, Any], ref: str) -> bool:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_docs_command_writes_openapi_and_asyncapi(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "cli.main", "docs", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    openapi = json.loads((tmp_path / "openapi.json").read_text())
    operations = {op["operationId"] for path in openapi["paths"].values() for op in path.values()}
    assert {"uploadTrack", "listTracks", "search", "trackEvents", "login", "replayStage"} <= (
        operations
    )
    asyncapi = json.loads((tmp_path / "asyncapi.json").read_text())
    assert asyncapi["asyncapi"] == "3.0.0"
    assert set(STAGE_INPUT.values()) | {"indexed", "failed", "progress"} <= set(
        asyncapi["channels"]
    )
    for document in (openapi, asyncapi):
        dangling = [ref for ref in _refs(document) if not _resolves(document, ref)]
        assert dangling == []
