"""What the tests and the benchmarks both run: our server as a subprocess (`server_process`) and the pinned
JavaScript Interledger stack (`js_stack`, with its npm folders js/, js-moneyd/, js-node16/ beside it).

Not part of the product: the wheel ships only `spsp_pull` and `stream`, and neither imports this package
(tests/test_layers.py). It imports nothing from `tests` or `bench`, which both build on it.
"""
