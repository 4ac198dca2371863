"""A real authorization server for the OAuth tests: npm's oidc-provider on 127.0.0.1
(tests/node/oidc_provider.mjs), with keys made here so that several instances can share them."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from .node_tools import REPO, require

SCRIPT = Path(__file__).resolve().parent / "node" / "oidc_provider.mjs"
AS_MODULES = REPO / ".cache" / "oidc-provider" / "node_modules"  # .ci/install-node-tools.sh puts it there
OIDC_PROVIDER = AS_MODULES / "oidc-provider" / "package.json"


def signing_keys(kid: str) -> dict[str, Any]:
    """A private JWK set of one RSA key (oidc-provider publishes its public half)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(private))
    return {"keys": [{**jwk, "kid": kid, "use": "sig", "alg": "RS256"}]}


class AuthorizationServer:
    def __init__(self, process: subprocess.Popen[str], issuer: str, port: int) -> None:
        self.process = process
        self.issuer = issuer
        self.url = f"http://127.0.0.1:{port}"  # where it listens (its issuer may name another)

    def client_credentials(self, client_id: str, secret: str, resource: str, scope: str) -> str:
        """An access token for a machine client (the client credentials grant, RFC 8707 resource)."""
        answer = httpx.post(
            f"{self.url}/token",
            data={"grant_type": "client_credentials", "resource": resource, "scope": scope},
            auth=(client_id, secret),
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token


@contextmanager
def authorization_server(workdir: Path, **config: Any) -> Iterator[AuthorizationServer]:
    """oidc-provider started with `config` (see the script); stopped when the block ends."""
    node = require(OIDC_PROVIDER)
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / SCRIPT.name
    shutil.copy(SCRIPT, script)
    if not (workdir / "node_modules").exists():
        (workdir / "node_modules").symlink_to(AS_MODULES)  # ES modules resolve packages from their path
    with (workdir / "oidc-provider.log").open("w") as log:  # the process keeps its own descriptor
        process = subprocess.Popen(
            [str(node), str(script), json.dumps(config)], stdout=subprocess.PIPE, stderr=log, text=True
        )
    try:
        started = _first_line(process, deadline=time.monotonic() + 60)
        yield AuthorizationServer(process, started["issuer"], started["port"])
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _first_line(process: subprocess.Popen[str], deadline: float) -> dict[str, Any]:
    stdout = process.stdout
    assert stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
    except queue.Empty:
        line = ""
    if not line:
        raise RuntimeError("oidc-provider did not start (see oidc-provider.log in the test's directory)")
    started: dict[str, Any] = json.loads(line)
    return started
