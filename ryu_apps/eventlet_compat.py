"""Let ryu 4.34 import under eventlet >= 0.30.3 on Python 3.11.

ryu/app/wsgi.py does `from eventlet.wsgi import ALREADY_HANDLED`, a name newer eventlet
removed, and ryu-manager imports that module before it loads any app.  Installing this
module from a .pth file (see the Makefile) defines the name the moment eventlet.wsgi is
imported, so plain `ryu-manager` works.  Only Ryu's websocket responses use the value.
"""
import importlib.abc
import importlib.machinery
import sys
import warnings

_MODULE = 'eventlet.wsgi'

# ryu imports eventlet everywhere; its deprecation banner on every start is noise here.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')


def _patch(module) -> None:
    if not hasattr(module, 'ALREADY_HANDLED'):
        module.ALREADY_HANDLED = object()


class _Finder(importlib.abc.MetaPathFinder):
    """Finds eventlet.wsgi through the other finders and patches it once loaded."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _patch(module)
        spec.loader.exec_module = exec_and_patch
        return spec


if _MODULE in sys.modules:
    _patch(sys.modules[_MODULE])
elif not any(isinstance(f, _Finder) for f in sys.meta_path):
    sys.meta_path.insert(0, _Finder())
