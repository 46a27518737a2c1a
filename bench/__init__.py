"""labsalt's benchmarks: ``python -m bench [NAME ...]`` (``make bench``); see bench/__main__.py."""
