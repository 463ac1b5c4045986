"""Ray's ``ray.experimental`` path: ``tqdm_ray`` (progress bars from any worker).

Importing it registers the driver's handler for the bars' output lines, so
``actorium/__init__.py`` imports it: a driver draws bars that workers make even if
it never imports ``tqdm_ray`` itself."""
from actorium.experimental import tqdm_ray

__all__ = ["tqdm_ray"]
