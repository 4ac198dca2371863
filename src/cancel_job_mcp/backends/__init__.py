"""Backends: one module per place jobs run, all behind the `Backend` protocol of `base`."""
