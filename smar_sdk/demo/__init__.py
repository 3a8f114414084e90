"""The shop demo: a FastAPI app and a plain HTML/JS page comparing SMAR (fused) and text-only ranking.

Run it with ``smar-sdk demo --catalog catalog.jsonl``, or build it in code with
``smar_sdk.demo.app.create_app(smar_sdk.demo.search.DemoSearch(model, store))``. Nothing heavy is
imported here, so registering the command keeps ``smar-sdk --help`` fast.
"""
