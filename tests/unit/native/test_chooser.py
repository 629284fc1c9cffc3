"""klog.native picks the C module, falls back to the twin, and says so; the build is optional."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from klog import _native_py, native

ROOT = Path(__file__).resolve().parents[3]
API = ("scan_batches", "sendfile_slice", "encode_records", "decode_records")
CODES = ("SCAN_TRUNCATED", "SCAN_BAD_LENGTH", "SCAN_BAD_MAGIC", "SCAN_BAD_CRC")


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "KLOG_NO_NATIVE"}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_the_c_module_loads_by_default(expect_native: bool) -> None:
    if not expect_native:
        pytest.skip("KLOG_EXPECT_NATIVE=0: this environment builds without the C extension")
    result = run_python("import klog.native as n; print(n.IMPLEMENTATION)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "c"
    assert "pure-Python twin" not in result.stderr


def test_this_test_process_uses_the_expected_implementation(expect_native: bool) -> None:
    forced = os.environ.get("KLOG_NO_NATIVE", "") not in ("", "0")
    if forced:
        assert native.IMPLEMENTATION == "python"
    elif expect_native:
        assert native.IMPLEMENTATION == "c"
    else:
        assert native.IMPLEMENTATION in ("c", "python")


def test_klog_no_native_forces_the_twin_silently() -> None:
    result = run_python("import klog.native as n; print(n.IMPLEMENTATION)", KLOG_NO_NATIVE="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "python"
    assert result.stderr == ""


def test_a_broken_c_module_falls_back_with_one_warning() -> None:
    code = (
        "import sys; sys.modules['klog._native'] = None\n"  # makes the import fail
        "import klog.native as n\n"
        "import klog.native as again\n"
        "print(n.IMPLEMENTATION, n.scan_batches(b'') == ([], 0, None))"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["python", "True"]
    warnings = [line for line in result.stderr.splitlines() if "pure-Python twin" in line]
    assert len(warnings) == 1
    assert "klog._native is unavailable" in warnings[0]


def test_chooser_exports_one_implementation_and_the_shared_codes() -> None:
    chosen = _native_py if native.IMPLEMENTATION == "python" else sys.modules["klog._native"]
    for name in API:
        assert getattr(native, name) is getattr(chosen, name)
    for name in CODES:
        assert getattr(native, name) == getattr(_native_py, name)
        assert getattr(chosen, name) == getattr(_native_py, name)


def test_a_failed_c_build_still_installs(tmp_path: Path) -> None:
    # A compiler that always fails stands in for a machine without one.
    shutil.copy(ROOT / "setup.py", tmp_path / "setup.py")
    shutil.copytree(ROOT / "native", tmp_path / "native")
    (tmp_path / "klog").mkdir()
    result = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace"],
        cwd=tmp_path,
        env={**os.environ, "CC": "false", "LDSHARED": "false"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the pure-Python twin will be used" in result.stdout + result.stderr
    assert not list((tmp_path / "klog").glob("_native*.so"))
