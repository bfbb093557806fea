"""Issue 20 item 7 and issue 17 item 9: the writable UI refuses GraphQL mutations over GET and listens on
127.0.0.1 only; SIGTERM to `c2c ui` stops the webserver, the daemon and their code servers.

Before the fix `GET /graphql?query=mutation{...}` added a partition (any web page the operator opened
could launch or delete runs), `--host 0.0.0.0` was accepted, and SIGTERM left the webserver and its
code server running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance

from tests.operations.ops_support import BIN, city_env, free_port, subprocess_env

REPO_SELECTOR = '{repositoryName: "__repository__", repositoryLocationName: "c2c"}'


def add_partition(key: str) -> str:
    return (f'mutation {{ addDynamicPartition(repositorySelector: {REPO_SELECTOR}, partitionsDefName: "drop_files", '
            f'partitionKey: "{key}") {{ __typename }} }}')


def _children(pid: int) -> set[int]:
    """Every descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    out: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for child, parent in parents.items():
            if parent == p and child not in out:
                out.add(child)
                todo.append(child)
    return out


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def hub_env(tmp_path: Path, master_key: str) -> dict[str, str]:
    drop = tmp_path / "drop"
    (drop / "fps").mkdir(parents=True)
    return subprocess_env(city_env(tmp_path / "home", drop, C2C_MASTER_KEY=master_key))


def _start_ui(env: dict[str, str], port: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "c2c"), "ui", "--port", str(port), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_serving(proc: subprocess.Popen, port: int, timeout_s: float = 240.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"c2c ui exited: {proc.stdout.read().decode() if proc.stdout else ''}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise AssertionError("c2c ui did not start")


@pytest.fixture
def writable_ui(hub_env: dict[str, str]) -> Iterator[tuple[subprocess.Popen, int]]:
    port = free_port()
    proc = _start_ui(hub_env, port)
    try:
        _wait_serving(proc, port)
        yield proc, port
    finally:
        _kill_all(proc)


def _kill_all(proc: subprocess.Popen) -> None:
    """Test clean-up: c2c ui's process group (its own session) and anything still below it."""
    for pid in _children(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _partitions(env: dict[str, str]) -> set[str]:
    old = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    try:
        with DagsterInstance.get() as instance:
            return set(instance.get_dynamic_partitions("drop_files"))
    finally:
        if old is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = old


def test_writable_ui_refuses_mutations_over_get_and_stops_whole_on_sigterm(
    writable_ui: tuple[subprocess.Popen, int], hub_env: dict[str, str]
) -> None:
    proc, port = writable_ui
    base = f"http://127.0.0.1:{port}/graphql"

    status, body = _get(base + "?" + urllib.parse.urlencode({"query": add_partition("evil/get.csv")}))
    assert 400 <= status < 500 and "mutations" in body
    # a form POST carrying the mutation in its URL (no preflight cross-site) is refused the same way
    form = urllib.request.Request(base + "?" + urllib.parse.urlencode({"query": add_partition("evil/form.csv")}),
                                  data=b"", headers={"Content-Type": "text/plain"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(form, timeout=60)
    assert refused.value.code == 405

    # a query over GET still works, and so does a mutation as a JSON POST (what the UI sends)
    status, body = _get(base + "?" + urllib.parse.urlencode({"query": "{ version }"}))
    assert status == 200 and json.loads(body)["data"]["version"]
    post = urllib.request.Request(base, data=json.dumps({"query": add_partition("ok/post.csv")}).encode(),
                                  headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(post, timeout=60) as resp:
        assert json.load(resp)["data"]["addDynamicPartition"]["__typename"] == "AddDynamicPartitionSuccess"
    assert _partitions(hub_env) == {"ok/post.csv"}  # nothing the refused requests asked for happened

    # SIGTERM to c2c ui (not to its group): the webserver, daemon and code servers all stop
    family = _children(proc.pid)
    assert len(family) >= 3, family  # dagster dev, its webserver and daemon (and code servers)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_running(p) for p in family):
        time.sleep(0.5)
    assert [p for p in family if _running(p)] == []


def test_writable_ui_binds_loopback_only(hub_env: dict[str, str]) -> None:
    proc = subprocess.run([str(BIN / "c2c"), "ui", "--host", "0.0.0.0", "--port", str(free_port())], env=hub_env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "127.0.0.1 only" in proc.stderr and "--read-only" in proc.stderr


def test_read_only_ui_stops_whole_on_sigterm(hub_env: dict[str, str]) -> None:
    port = free_port()
    proc = _start_ui(hub_env, port, "--read-only")
    try:
        _wait_serving(proc, port)
        family = _children(proc.pid)
        assert family
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_running(p) for p in family):
            time.sleep(0.5)
        assert [p for p in family if _running(p)] == []
    finally:
        _kill_all(proc)
