"""The K3s shape: one JWT key from a Secret for every gateway replica (and a gateway that refuses
a generated key when it is told it runs replicated), no model volume on the gateway, and the
embedded-dev overlay pointing at the one MongoDB member it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.auth.tokens import load_jwt_secret
from schemas.settings import settings_from_env

K3S = Path(__file__).resolve().parents[2] / "infra" / "k3s"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _gateway() -> dict[str, Any]:
    (deployment,) = [
        doc for doc in _documents(K3S / "base" / "gateway.yaml") if doc["kind"] == "Deployment"
    ]
    return deployment


def test_every_gateway_replica_signs_with_the_secret_key() -> None:
    (container,) = _gateway()["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item for item in container["env"]}
    secret = env["TONESTREAM_JWT_SECRET"]["valueFrom"]["secretKeyRef"]
    assert secret == {"name": "tonestream-secrets", "key": "JWT_SECRET"}
    assert env["TONESTREAM_REPLICATED"]["value"] == "true"
    (example,) = _documents(K3S / "base" / "secret.example.yaml")
    assert len(example["stringData"]["JWT_SECRET"]) >= 32


def test_a_replicated_gateway_refuses_a_generated_key(tmp_path: Path) -> None:
    settings = settings_from_env({}, data_dir=str(tmp_path), replicated=True)
    with pytest.raises(ValueError, match="TONESTREAM_JWT_SECRET is empty"):
        load_jwt_secret(settings)
    assert not (tmp_path / "secrets" / "jwt.key").exists()
    alone = settings_from_env({}, data_dir=str(tmp_path))
    assert load_jwt_secret(alone)  # a single gateway may generate its key


def test_the_gateway_mounts_no_model_weights() -> None:
    spec = _gateway()["spec"]["template"]["spec"]
    assert "volumes" not in spec
    assert all("volumeMounts" not in c for c in spec["containers"])


def test_embedded_dev_lists_only_the_mongo_member_it_runs() -> None:
    (overlay,) = _documents(K3S / "overlays" / "embedded-dev" / "kustomization.yaml")
    assert {"name": "mongo", "count": 1} in overlay["replicas"]
    urls = [
        env["value"]
        for patch in overlay["patches"]
        if "TONESTREAM_MONGO_URL" in patch["patch"]
        for container in yaml.safe_load(patch["patch"])["spec"]["template"]["spec"]["containers"]
        for env in container["env"]
        if env["name"] == "TONESTREAM_MONGO_URL"
    ]
    assert len(urls) == 1
    assert "mongo-0." in urls[0]
    assert "mongo-1." not in urls[0]
    assert "mongo-2." not in urls[0]
