"""What can be checked of the container image and docker-compose.yml without Docker: the compose file
builds the image once, starts each service with its own healthcheck and a restart policy, keeps Redis
persistent and password-protected, installs nothing at start and passes no empty secret; the
Dockerfile is multi-stage, installs the hash-checked lock and runs as a user without privileges.
``docker compose config`` validates the file too where the compose plugin is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
WORKERS = {"poll", "deliver", "websub"}


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())  # resolves the x-alerts anchor's << merges
    assert isinstance(loaded, dict)
    return loaded


def test_the_services_and_the_image_built_once() -> None:
    services = _compose()["services"]
    assert set(services) == {"redis"} | WORKERS  # no beat: each poll worker schedules its polls
    for name in WORKERS:
        service = services[name]
        assert service["build"] == "." and service["image"] == "breaking-alerts:local"
        assert service["restart"] == "unless-stopped"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "./config:/config:ro" in service["volumes"]
        text = " ".join(service["command"])
        assert "pip install" not in text and ":/app" not in " ".join(service["volumes"])


def test_each_healthcheck_checks_its_own_service() -> None:
    services = _compose()["services"]
    for name in ("poll", "deliver"):
        check = " ".join(services[name]["healthcheck"]["test"])
        assert f"inspect ping -d {name}@$$HOSTNAME" in check  # this worker, not any worker
        assert f"-n {name}@%h" in " ".join(services[name]["command"])
    assert "8787/healthz" in " ".join(services["websub"]["healthcheck"]["test"])
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])


def test_redis_is_persistent_protected_and_not_root() -> None:
    redis = _compose()["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and '--requirepass "$$REDIS_PASSWORD"' in command
    assert redis["user"] != "root" and not str(redis["user"]).startswith("0")
    assert "${REDIS_PASSWORD:?" in redis["environment"]["REDIS_PASSWORD"]  # unset: compose says so


def test_no_empty_secrets_are_passed() -> None:
    """Secrets come from .env as they are there: none is defaulted to empty with ${NAME:-}."""
    assert ":-}" not in COMPOSE.read_text()
    for name in WORKERS:
        service = _compose()["services"][name]
        assert service["env_file"] == ".env"
        assert "${REDIS_PASSWORD:?" in service["environment"]["REDIS_URL"]
    example = (ROOT / ".env.example").read_text()
    assert "REDIS_PASSWORD=" in example
    for variable in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID", "SMTP_PASSWORD", "NTFY_TOPIC"):
        assert variable in (ROOT / "config" / "subscriptions.yaml").read_text()
        assert f"# {variable}=" in example  # listed, left out until set


def test_the_dockerfile_is_multi_stage_locked_and_unprivileged() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    froms = [line for line in lines if line.startswith("FROM ")]
    assert len(froms) == 2 and froms[0].endswith(" AS build")
    text = DOCKERFILE.read_text()
    assert "--require-hashes -r /src/requirements.lock" in text
    assert "COPY --from=build /venv /venv" in text
    user = next(line for line in lines if line.startswith("USER "))
    assert user != "USER root" and lines.index(user) > lines.index(froms[1])
    assert 'ENTRYPOINT ["alerts"]' in text and "/healthz" in next(line for line in lines if "urlopen" in line)
    final = text.split(froms[1])[1]
    assert "gcc" not in final and "build-essential" not in final  # no compilers in the final image


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="no docker compose here",
)
def test_docker_compose_config_accepts_it(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("REDIS_PASSWORD=test\n")
    done = subprocess.run(
        # the project directory is tmp_path, so env_file: .env is the one written here
        ["docker", "compose", "-f", str(COMPOSE), "--project-directory", str(tmp_path), "config", "--quiet"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
