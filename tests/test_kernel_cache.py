"""ringex.kernel_cache: the compiled-kernel cache's folder and whether it is warm."""
from ringex import kernel_cache


def test_a_folder_without_compiled_kernels_is_cold(tmp_path):
    assert not kernel_cache.is_warm(str(tmp_path / "missing"))
    (tmp_path / "core_abc").mkdir()
    assert not kernel_cache.is_warm(str(tmp_path))
    (tmp_path / "core_abc" / "order_service.process-40.py311.nbi").write_bytes(b"x")
    assert kernel_cache.is_warm(str(tmp_path))


def test_the_folder_follows_the_environment_or_the_source(monkeypatch, tmp_path):
    monkeypatch.setenv("RINGEX_NUMBA_CACHE", str(tmp_path))
    assert kernel_cache.cache_folder() == str(tmp_path)
    monkeypatch.delenv("RINGEX_NUMBA_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert kernel_cache.cache_folder() == str(tmp_path / "ringex" / "numba"
                                              / kernel_cache.source_hash())


def test_the_source_hash_covers_the_kernels_and_what_they_import():
    names = {p.name for p in kernel_cache.kernel_sources()}
    assert {"order_service.py", "matcher.py", "records.py", "jit.py",
            "kernel_cache.py"} <= names
    assert "session.py" not in names            # the protocol compiles nothing
