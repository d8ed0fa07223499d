# Benchmarks are programs, not tests: plain pytest never collects anything here.
collect_ignore_glob = ["*.py"]
