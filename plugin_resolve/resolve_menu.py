"""ipfacediff - edit faces in the marked range from a prompt (Workspace > Scripts > Utility > ipfacediff).

This file is copied into Resolve's Scripts/Utility folder by `ipfacediff install-resolve`,
which fills in INSTALL below: where the ipfacediff package lives, and the site-packages with
pyzmq and msgpack (added only when Resolve's Python is the same version). It opens the
ipfacediff window (plugin_resolve.ui), or prints what to do when that is not possible: on a
Python older than MIN_PYTHON it says so instead of failing inside the imports.
"""

import sys

INSTALL = {}  # filled in by `ipfacediff install-resolve`
MIN_PYTHON = (3, 8)  # the oldest Python the Resolve side runs on (docs/resolve.md); this file parses on 2.7+


def _add_paths():
    root = INSTALL.get("package_root")
    if root and root not in sys.path:
        sys.path.insert(0, root)
    if INSTALL.get("python") == "%d.%d" % sys.version_info[:2]:
        for site in INSTALL.get("site_packages", []):
            if site not in sys.path:
                sys.path.append(site)


def main(env):
    if sys.version_info[:2] < MIN_PYTHON:
        print("ipfacediff: Resolve runs this script with Python %d.%d (%s), and ipfacediff needs Python %d.%d or "
              "newer. Install a 64-bit Python %d.%d+ where Resolve finds it (Resolve's scripting README, "
              "Prerequisites), then open the script again." % (sys.version_info[0], sys.version_info[1],
                                                               sys.executable, MIN_PYTHON[0], MIN_PYTHON[1],
                                                               MIN_PYTHON[0], MIN_PYTHON[1]))
        return 1
    _add_paths()
    try:
        import msgpack  # noqa: F401
        import zmq  # noqa: F401
    except ImportError as exc:
        print("ipfacediff: Resolve's Python %d.%d (%s) lacks %s. Install pyzmq and msgpack for it, e.g. "
              "\"%s\" -m pip install pyzmq msgpack" % (sys.version_info[0], sys.version_info[1], sys.executable,
                                                       exc.name, sys.executable or "python3"))
        return 1
    try:
        from plugin_resolve import ui
    except ImportError as exc:
        print("ipfacediff: cannot import the ipfacediff package (%s) from %s; run `ipfacediff install-resolve` "
              "again from the Python that has ipfacediff installed." % (exc, INSTALL.get("package_root")))
        return 1
    return ui.main(env, engine=INSTALL.get("engine"))


if __name__ == "__main__" or "resolve" in globals() or "bmd" in globals():
    main(globals())
