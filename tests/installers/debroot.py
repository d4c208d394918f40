"""A fresh minimal Debian root (debootstrap --variant=minbase: no Python in it) to install the .deb into.

debootstrap runs once per machine and is kept as a tarball (``TANDEM_DEBROOT_CACHE``, default
/var/tmp/tandem-debroot); each test module unpacks a fresh copy. Downloaded .debs are cached
beside it, so a second run fetches nothing. Needs root (chroot, mount) and the Debian mirror.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

MIRROR = os.environ.get("TANDEM_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CACHE = Path(os.environ.get("TANDEM_DEBROOT_CACHE", "/var/tmp/tandem-debroot"))
CHROOT_ENV = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
}


def codename() -> str:
    """This machine's Debian release: the package is built here, so it must install there."""
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip('"')
    raise RuntimeError("/etc/os-release names no VERSION_CODENAME: not a Debian machine")


def why_not_possible() -> str | None:
    if os.geteuid() != 0:
        return "needs root (debootstrap, chroot, mount)"
    for tool in ("debootstrap", "dpkg-deb", "chroot", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/system-packages installer)"
    return None


def base_tarball() -> Path:
    name = codename()
    tarball = CACHE / f"{name}-minbase.tar"
    if tarball.exists():
        return tarball
    CACHE.mkdir(parents=True, exist_ok=True)
    work = CACHE / f"{name}-bootstrap"
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run(
        ["debootstrap", "--variant=minbase", name, str(work), MIRROR],
        check=True,
        capture_output=True,
    )
    partial = tarball.with_suffix(".partial")
    subprocess.run(["tar", "-C", str(work), "-cf", str(partial), "."], check=True)
    partial.rename(tarball)  # only a complete tarball is ever reused
    shutil.rmtree(work, ignore_errors=True)
    return tarball


def _mounted_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    points = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    return [p for p in points if (p + "/").startswith(prefix)]


class DebRoot:
    def __init__(self, root: Path) -> None:
        self.root = root

    def run(
        self,
        cmd: Sequence[str],
        *,
        user: str | None = None,
        env: dict[str, str] | None = None,
        check: bool = True,
        timeout: float = 600,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        argv = ["chroot", *([f"--userspec={user}:{user}"] if user else []), str(self.root)]
        full_env = {**CHROOT_ENV, **(env or {})}
        if user:
            full_env.setdefault("HOME", f"/home/{user}")
        result = subprocess.run(
            [*argv, "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in full_env.items()), *cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} in the Debian root exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def popen(
        self, cmd: Sequence[str], *, user: str, env: dict[str, str], log: Path
    ) -> subprocess.Popen[bytes]:
        full_env = {**CHROOT_ENV, "HOME": f"/home/{user}", **env}
        with open(log, "wb") as out:
            return subprocess.Popen(
                [
                    "chroot",
                    f"--userspec={user}:{user}",
                    str(self.root),
                    "/usr/bin/env",
                    "-i",
                    *(f"{k}={v}" for k, v in full_env.items()),
                    *cmd,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def bind(self, host_dir: Path, inside: str) -> None:
        """The host's ``host_dir`` at ``inside`` (unmounted with the root)."""
        target = self.path(inside)
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "--bind", str(host_dir), str(target)], check=True)

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def dpkg_clean(self) -> str:
        """'' when dpkg knows of no half-installed, half-configured or unpacked-only package."""
        return self.run(["dpkg", "--audit"], check=False).stdout.strip()


@contextlib.contextmanager
def fresh_root(parent: Path) -> Iterator[DebRoot]:
    """A fresh copy of the minimal root, /proc mounted, the host's resolver, the .deb cache bound in."""
    root = parent / "debroot"
    root.mkdir()
    subprocess.run(["tar", "-C", str(root), "-xf", str(base_tarball())], check=True)
    shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
    archives = CACHE / "apt-archives"
    (archives / "partial").mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
        subprocess.run(["mount", "--bind", str(archives), str(root / "var/cache/apt/archives")], check=True)
        deb_root = DebRoot(root)
        deb_root.run(["apt-get", "update", "-qq"])
        yield deb_root
    finally:
        for point in sorted(_mounted_under(root), reverse=True):
            subprocess.run(["umount", "-l", point], check=False)
        # Never delete through a mount that is still there (it is the host's directory).
        if not _mounted_under(root):
            shutil.rmtree(root, ignore_errors=True)
