"""plotly.graph_objects, imported on first use.

Importing plotly adds ~17 MB to a process. Loaded at URL-conf time it would sit in every
web worker, also in those that only serve ingest, the API and streamed exports (whose
peak memory issue 4 bounds); this way only a worker that draws a chart pays for it.
"""

import importlib


class _LazyGraphObjects:
    _module = None

    def __getattr__(self, name):
        if _LazyGraphObjects._module is None:
            _LazyGraphObjects._module = importlib.import_module("plotly.graph_objects")
        return getattr(_LazyGraphObjects._module, name)


go = _LazyGraphObjects()
