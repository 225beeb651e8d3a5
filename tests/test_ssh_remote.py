"""A DVC remote on a real SSH server: the system's OpenSSH sshd, started by the tests on
127.0.0.1 with its own host key, config and authorized client key (`make test` installs
openssh-server). The session's finished tiny run is pushed there with its run-cache; a fresh clone
of the commit before the run restores every stage from it over SSH.
"""
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time

import pytest
import yaml

from tests.conftest import git_clone, run


def find_sshd() -> str:
    """sshd's absolute path (it re-executes itself and refuses a relative one)."""
    found = shutil.which("sshd", path=os.pathsep.join(["/usr/sbin", "/usr/local/sbin", os.environ.get("PATH", "")]))
    if not found:
        pytest.fail("sshd not found: install openssh-server (`make test` installs it)", pytrace=False)
    return os.path.abspath(found)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers_ssh(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            return s.recv(8).startswith(b"SSH-")
    except OSError:
        return False


@pytest.fixture(scope="module")
def ssh_server(tmp_path_factory):
    """(user, port, client key, log file) of an sshd listening on 127.0.0.1 for this module only:
    public-key login as the current user, SFTP in-process, none of /etc/ssh's config or keys."""
    sshd = find_sshd()
    d = tmp_path_factory.mktemp("sshd")
    host_key, client_key = d / "host_ed25519", d / "client_ed25519"
    for key in (host_key, client_key):
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(key)], d)
    (d / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    user = pwd.getpwuid(os.getuid()).pw_name
    if os.geteuid() == 0:
        # sshd run as root chroots its unprivileged pre-auth child there and refuses to start
        # without it; the Debian service creates it when it starts, which a container without init never does
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    log = d / "sshd.log"
    for _ in range(3):  # another process may take the free port before sshd binds it
        port = free_port()
        config = d / "sshd_config"
        config.write_text("\n".join([
            "ListenAddress 127.0.0.1",
            f"Port {port}",
            f"HostKey {host_key}",
            f"PidFile {d / 'sshd.pid'}",
            f"AuthorizedKeysFile {d / 'authorized_keys'}",
            f"AllowUsers {user}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            # the key files lie under the world-writable /tmp, which strict modes reject
            "StrictModes no",
            # PAM's session modules (pam_loginuid) fail in containers
            "UsePAM no",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
        ]) + "\n")
        with log.open("ab") as out:  # -D: in the foreground, -e: its log (and its children's) here
            proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT)
        deadline, ready = time.monotonic() + 20, False
        while proc.poll() is None and time.monotonic() < deadline:
            if answers_ssh(port):
                ready = True
                break
            time.sleep(0.1)
        if ready:
            break
        proc.kill()
        proc.wait()
    else:
        pytest.fail(f"sshd did not start on 127.0.0.1: {log.read_text()[-2000:]}", pytrace=False)
    try:
        yield user, port, client_key, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def remote_entries(folder, sub) -> set:
    """Paths of the files under folder/sub, relative to folder."""
    return {str(p.relative_to(folder)) for p in (folder / sub).rglob("*") if p.is_file()}


def test_run_cache_over_ssh_restores_a_fresh_clone(finished_project, ssh_server, tmp_path):
    """`python -m tools.push_run_cache` to an SSH remote, then a fresh clone of the commit before the
    run, with nothing but that remote: `dvc pull --run-cache data.dvc` and `dvc repro --pull`
    restore every stage over SSH, as in the local remote's run-cache test."""
    repo, _, _ = finished_project
    user, port, key, log = ssh_server
    folder = tmp_path / "ssh-remote"
    folder.mkdir()
    url = f"ssh://{user}@127.0.0.1:{port}{folder}"

    # .dvc/config.local: the session's repository, which other tests clone, keeps its config
    run(["dvc", "remote", "add", "--local", "ssh", url], repo)
    try:
        run(["dvc", "remote", "modify", "--local", "ssh", "keyfile", str(key)], repo)
        pushed = run([sys.executable, "-m", "tools.push_run_cache", "-r", "ssh"], repo)
    finally:
        run(["dvc", "remote", "remove", "--local", "ssh"], repo)
    assert "warning" not in pushed.stderr, pushed.stderr
    assert f"Accepted publickey for {user}" in log.read_text()
    # what the SFTP server wrote: every run record of the session's run, and the objects they name
    runs = remote_entries(folder, "runs")
    assert runs == remote_entries(repo / ".dvc" / "cache", "runs"), pushed.stdout
    objects = remote_entries(folder, "files/md5")
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    for name, stage in lock.items():
        if name != "report":  # no run record (below): its outputs live in git only
            for out in stage["outs"]:
                assert f"files/md5/{out['md5'][:2]}/{out['md5'][2:]}" in objects, (name, out["path"])

    clone = git_clone(repo, tmp_path / "clone", rev="HEAD~1")  # the commit before the run: no dvc.lock
    assert not (clone / "dvc.lock").exists() and not list((clone / "metrics").rglob("*.json"))
    config = run(["dvc", "config", "--project", "--list"], clone).stdout.splitlines()
    for name in {line.split(".")[1] for line in config if line.startswith("remote.")}:
        run(["dvc", "remote", "remove", name], clone)  # nothing but SSH to pull from (the demo's remote)
    assert not run(["dvc", "remote", "list"], clone).stdout.strip()
    run(["dvc", "remote", "add", "-d", "ssh", url], clone)
    run(["dvc", "remote", "modify", "--local", "ssh", "keyfile", str(key)], clone)
    run(["dvc", "pull", "--run-cache", "data.dvc"], clone)  # the run records and the inputs
    assert (clone / "data" / "models" / "yolo_pose.pt").is_file()
    res = run(["dvc", "repro", "--pull"], clone)  # --pull: fetch what the run-cache entries name
    restored = {line.split("'")[1] for line in res.stdout.splitlines() if "is cached - skipping run" in line}
    ran = {line.split("'")[1] for line in res.stdout.splitlines() if line.startswith("Running stage")}
    # DVC keeps no run-cache for a stage with `cache: false` outputs other than metrics and
    # plots: the report, which is in git, is written again (in seconds), the same
    assert restored == set(lock) - {"report"} and ran == {"report"}, res.stdout
    assert "Data and pipelines are up to date" in run(["dvc", "status"], clone).stdout
    for f in run(["git", "ls-files", "metrics", "report"], repo).stdout.split():
        assert (clone / f).read_bytes() == (repo / f).read_bytes(), f
