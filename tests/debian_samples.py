"""Real video files shipped by Debian packages, fetched once into .cache/debian-samples.

`apt-get download` + `dpkg-deb -x` extract the files without installing anything. Tests that need them call
`debian_sample(name)`, which skips (with the reason) only where apt is unavailable.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path

import pytest

CACHE = Path(__file__).resolve().parents[1] / ".cache" / "debian-samples"
SAMPLES = {
    "cockatoo.mp4": (
        "python3-imageio",
        "usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4",
    ),
    "realshort.mp4": (
        "python3-imageio",
        "usr/lib/python3/dist-packages/imageio/resources/images/realshort.mp4",
    ),
    "vtest.avi": ("opencv-doc", "usr/share/doc/opencv-doc/examples/data/vtest.avi"),
    "Megamind.avi": ("opencv-doc", "usr/share/doc/opencv-doc/examples/data/Megamind.avi"),
    "Megamind_bugy.avi": ("opencv-doc", "usr/share/doc/opencv-doc/examples/data/Megamind_bugy.avi"),
    "tree.avi": ("opencv-doc", "usr/share/doc/opencv-doc/examples/data/tree.avi"),
}


def _download(package: str, folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["apt-get", "download", package], cwd=folder, capture_output=True, text=True, timeout=600
    )


def _fetch(package: str) -> None:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("apt-get/dpkg-deb unavailable: cannot fetch the Debian sample videos")
    downloads = CACHE / "debs"
    downloads.mkdir(parents=True, exist_ok=True)
    if not list(downloads.glob(f"{package}_*.deb")):
        result = _download(package, downloads)
        if result.returncode != 0:
            # A fresh machine has empty package lists: refresh them once, then try again.
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True, timeout=600)
            result = _download(package, downloads)
        if result.returncode != 0:
            pytest.skip(f"apt-get download {package} failed: {result.stderr.strip()[-300:]}")
    for deb in downloads.glob(f"{package}_*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(CACHE / "extracted")], check=True, timeout=600)


def debian_sample(name: str) -> Path:
    """Path of a Debian sample video, downloading and extracting its package on first use."""
    package, inner = SAMPLES[name]
    path = CACHE / "extracted" / inner
    if not path.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        with open(CACHE / ".lock", "w") as lock:  # pytest-xdist or parallel engineers: fetch once
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not path.is_file():
                _fetch(package)
    if not path.is_file():
        pytest.skip(f"{name} not found in Debian package {package}")
    return path
