"""docker-compose.yml, the Dockerfile and deploy/nginx.conf describe the topology the other
tests here run with local processes. This machine has no Docker, so these keep the files in
step with what is tested: the same nginx.conf, the same service names, ports and health checks."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest
from tidings import Settings

from tests.cluster.parts import COMPOSE_FILE, NGINX_CONF, Nginx, load_compose
from tests.support import ROOT

NODES = ("tidings-1", "tidings-2")
DOCKERFILE = ROOT / "Dockerfile"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return dict(load_compose(COMPOSE_FILE.read_text())["services"])


def test_compose_runs_redis_two_nodes_sharing_it_and_the_proxy(services: dict[str, Any]) -> None:
    assert set(services) == {"redis", *NODES, "proxy"}
    redis = services["redis"]
    assert redis["image"] == "redis:7-alpine"
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    for name in NODES:
        node = services[name]
        assert node["build"] == "."
        environment = dict(item.partition("=")[::2] for item in node["environment"])
        assert environment["TIDINGS_REDIS_URL"] == "redis://redis:6379/0"
        assert node["depends_on"] == {"redis": {"condition": "service_healthy"}}
    proxy = services["proxy"]
    assert proxy["image"].startswith("nginx:")
    assert proxy["ports"] == ["8080:8080"]
    assert proxy["depends_on"] == {name: {"condition": "service_healthy"} for name in NODES}


def test_the_proxy_mounts_the_nginx_conf_the_tests_run(services: dict[str, Any]) -> None:
    mounted = [
        (ROOT / source).resolve()
        for source, target, *_ in (volume.split(":") for volume in services["proxy"]["volumes"])
        if target == "/etc/nginx/nginx.conf"
    ]
    assert mounted == [NGINX_CONF.resolve()]
    text = NGINX_CONF.read_text()
    # Its upstream is the compose services on the port the image serves; it listens on the
    # port compose publishes. The tests replace exactly these by local addresses.
    assert re.findall(r"^\s*server (\S+:\d+)", text, re.MULTILINE) == list(Nginx.UPSTREAMS)
    assert tuple(f"{name}:{_image_port()}" for name in NODES) == Nginx.UPSTREAMS
    assert re.findall(r"^\s*listen (\S+);", text, re.MULTILINE) == ["8080"]
    for directive in (
        "ip_hash;",  # sticky: the polling transport
        "proxy_http_version 1.1;",  # websocket
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_buffering off;",  # Server-Sent Events
    ):
        assert directive in text


def test_the_image_installs_the_packages_and_serves_on_every_interface() -> None:
    dockerfile = DOCKERFILE.read_text()
    assert dockerfile.startswith("# ") and "\nFROM python:3.11-slim\n" in dockerfile
    assert 'CMD ["tidings", "serve", "--host", "0.0.0.0"]' in dockerfile
    assert "/healthz" in dockerfile.partition("HEALTHCHECK")[2]
    assert re.search(r"^RUN pip install \.", dockerfile, re.MULTILINE)
    copied = {
        path
        for line in re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE)
        for path in line.split()
    }
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = set(pyproject["tool"]["setuptools"]["package-dir"].values())
    assert packages | {"pyproject.toml", pyproject["project"]["readme"]} == copied
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert not copied & ignored
    assert all((ROOT / path).exists() for path in copied)


def test_the_compose_reader_refuses_what_it_does_not_read() -> None:
    assert load_compose("a:\n  b: [1, 2]\n  c:\n    - x=y\n") == {"a": {"b": [1, 2], "c": ["x=y"]}}
    for text in ("a: &base\n  b: c\n", "a:\n  - b: c\n", "a:\nb\n"):
        with pytest.raises(ValueError):
            load_compose(text)


def _image_port() -> int:
    port = re.search(r"^EXPOSE (\d+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert port is not None
    assert int(port.group(1)) == Settings.model_fields["port"].default
    return int(port.group(1))


def _directives(block: str) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in block.splitlines())
    return [line for line in lines if line.endswith(";")]


def test_docs_cluster_shows_the_location_block_nginx_conf_has() -> None:
    """docs/cluster.md walks through the proxy's location block; it must be the shipped one
    (the Host header with its port above all: ``$host`` breaks browsers on any port but 80)."""
    docs = (ROOT / "docs" / "cluster.md").read_text()
    shown = re.search(r"```nginx\n(location / \{.*?\n\})\n```", docs, re.DOTALL)
    shipped = re.search(r"\n\s*(location / \{.*?\n\s*\})", NGINX_CONF.read_text(), re.DOTALL)
    assert shown and shipped
    assert _directives(shown.group(1)) == _directives(shipped.group(1))
    assert "proxy_set_header Host $http_host;" in _directives(shipped.group(1))
