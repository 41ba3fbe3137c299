"""plotly.graph_objects, imported on first use, and `plain` for user-provided text in a figure.

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


def plain(text) -> str:
    """A user-provided string (a model, API key, error code or account name) as plotly text
    that is drawn literally.

    Plotly reads a subset of HTML in labels, ticks, legends and hover text (<a href>, <b>,
    <br>, ...) and decodes entities only in the text between those tags, after it found
    them: with &, < and > written as entities no tag is seen and the string shows as it is.
    """
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
