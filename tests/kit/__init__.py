"""The tests' shared kit, imported as ``from kit.<module> import ...`` (``tests/`` is on ``sys.path``
through ``tests/conftest.py``): one copy of each helper every test area uses.

- :mod:`kit.data`: tiny CSV files cut from the MoleculeNet excerpts and `gradscope record` command lines;
- :mod:`kit.optim`: tiny seeded models, closures and the naive references of the optimizers;
- :mod:`kit.traces`: traces written directly with known values (analyses and plots);
- :mod:`kit.landscape`: naive references of the landscape code (per-point loops, explicit Hessians).
"""
