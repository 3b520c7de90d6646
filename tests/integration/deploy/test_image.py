"""The image's build and start steps (scripts/image-*.sh, run by the Dockerfile) work.

The image is built into a temporary folder without the local model (the build argument
LOCAL_MODEL=0, no compiler needed), started the way the image's CMD starts it, and asked
for /healthz, /readyz and one answer. pip's cache keeps this to a minute or so.
"""

from __future__ import annotations

import os
import subprocess

import httpx
import pytest

from tests.integration.deploy.conftest import REPO
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.servers import free_port, wait_until_up

pytestmark = pytest.mark.timeout(600)


def test_image_scripts_build_and_start_a_working_service(
    tmp_path_factory: pytest.TempPathFactory, fake_llm: tuple[FakeOpenAI, str]
) -> None:
    prefix = tmp_path_factory.mktemp("image") / "opt-promptserve"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMPTSERVE_", "VIRTUAL"))}
    built = subprocess.run(
        ["sh", str(REPO / "scripts" / "image-build.sh"), str(prefix)],
        env={**env, "LOCAL_MODEL": "0"}, capture_output=True, text=True, timeout=540,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    venv_python = prefix / "venv" / "bin" / "python"
    # Installed as a package, not from the source tree; the model is out.
    where = subprocess.run(
        [str(venv_python), "-c", "import app, importlib.util as u; print(app.__file__); "
         "print(u.find_spec('llama_cpp') is None)"],
        capture_output=True, text=True, cwd=prefix, check=True,
    ).stdout.split()
    assert "site-packages" in where[0] and where[1] == "True"

    port = free_port()
    data = prefix.parent / "data"
    start_env = {
        **env,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PROMPTSERVE_DATA_DIR": str(data),
        "OPENAI_BASE_URL": f"{fake_llm[1]}/v1",
    }
    log = prefix.parent / "start.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(prefix / "bin" / "image-start.sh")], env=start_env, cwd=data.parent,
            stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_up(f"{url}/healthz", proc=proc, timeout=90)
        except (RuntimeError, TimeoutError) as error:
            raise AssertionError(log.read_text(errors="replace")) from error
        assert httpx.get(f"{url}/readyz").status_code == 200
        answer = httpx.post(f"{url}/example/invoke", json={"input": {"product": "vans"}})
        assert answer.status_code == 200
        assert answer.json()["metadata"]["promptlayer_request_id"] is not None
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # The embedded backend kept its data where the image's volume is.
    assert (data / "promptserve.db").exists()


def test_dockerfile_runs_the_tested_scripts() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "scripts/image-build.sh /opt/promptserve" in dockerfile
    assert 'CMD ["/opt/promptserve/bin/image-start.sh"]' in dockerfile
    assert "USER promptserve" in dockerfile and "HEALTHCHECK" in dockerfile
    assert "ARG LOCAL_MODEL=1" in dockerfile
