"""Root pytest configuration: the ``--benchmark`` switch for the suite in benchmarks/.

Plain ``pytest`` runs every benchmark once at a tiny size without timing (pytest-benchmark's
``--benchmark-disable``), only to check that it works; ``pytest benchmarks --benchmark`` runs the full sizes and
times them.
"""


def pytest_addoption(parser):
    parser.addoption(
        "--benchmark",
        action="store_true",
        default=False,
        help="run benchmarks/ at full sizes with timing (default: once at a tiny size, untimed)",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "sizes(full, tiny): benchmark sizes with and without --benchmark")
    if not config.getoption("--benchmark"):
        config.option.benchmark_disable = True


def pytest_generate_tests(metafunc):
    marker = metafunc.definition.get_closest_marker("sizes")
    if marker is not None and "size" in metafunc.fixturenames:
        full = metafunc.config.getoption("--benchmark")
        metafunc.parametrize("size", marker.kwargs["full"] if full else marker.kwargs["tiny"])
