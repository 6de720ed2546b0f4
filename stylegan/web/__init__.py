"""The explorer's web server (``stylegan explore``): an HTTP API and one static page.

A peer of :mod:`stylegan.cli`: it uses the library below it, and nothing imports it. :mod:`.params` turns
query strings into checked requests, :mod:`.session` renders them, :mod:`.projections` runs the projector
in the background, :mod:`.app` wires them to routes, ``static/index.html`` is the page.
"""
