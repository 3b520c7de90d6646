"""Benchmarks of promptserve's targets (PRODUCT.md "Targets"); run them with `make bench`."""
