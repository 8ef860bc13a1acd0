"""Static HTML sample viewer for run records (`mis-eval view`), with human adjudication.

    from mis_eval.viewer import build_viewer
    build_viewer(["results/"], "viewer/")     # -> viewer/index.html, viewer/img/...

Everything a run contains is treated as hostile (responses answer adversarial prompts): the
page is rendered by jinja2 with autoescape, the per-sample data travels as JSON with `<`, `>`
and `&` escaped inside a non-executable script block, and the page's script only ever writes
text nodes (never innerHTML). The page needs no network: images are downscaled copies next
to it, the script is inlined and allowed by its hash in the Content-Security-Policy.
"""

from mis_eval.viewer.build import Viewer, build_viewer, sample_anchor

__all__ = ["Viewer", "build_viewer", "sample_anchor"]
