"""The commands of ``limitor`` (the command line, :mod:`limitor.__main__`), one module each.

``limitor/__main__.py`` holds the parser, its validators and the dispatch; it runs:

- ``demo``: the live demo, each algorithm shaping calls made back to back, then tasks
  waiting in order on an async bucket;
- ``simulate``: :func:`limitor.simulate` from the parsed arguments, with a progress bar,
  and its report as text with sparklines, as JSON, or as a plot.
"""
