"""plotly.js served from our own static files, never a CDN.

The file comes from the installed `plotly` Python package (static/vendor/plotly.min.js), so
the browser library always matches the version that builds the figures, and 4.6 MB of
minified JavaScript is not copied into the repository. collectstatic picks it up too.
"""

from pathlib import Path

from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_JS = "vendor/plotly.min.js"


class PlotlyFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        import plotly

        self.root = Path(plotly.__file__).parent / "package_data"
        self.storage = FileSystemStorage(location=self.root)
        self.storage.prefix = "vendor"

    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        find_all = find_all or kwargs.get("all", False)
        if path == PLOTLY_JS:
            match = str(self.root / "plotly.min.js")
            return [match] if find_all else match
        return [] if find_all else None

    def list(self, ignore_patterns):
        yield "plotly.min.js", self.storage
