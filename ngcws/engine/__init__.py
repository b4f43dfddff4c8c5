"""The engine adapter: the only part of ngcws that talks to the Docker engine.

``transport`` speaks the Engine API's HTTP over the engine's socket (no SDK import: ``ngcws exec``
and a no-op ``ngcws up`` must start in a fraction of the 0.13 s that importing docker-py costs);
``client`` offers typed operations and maps every failure onto :mod:`ngcws.errors`; ``auth`` reuses
the user's docker logins through docker-py's credential-store support, imported only to pull.
"""

from ngcws.engine.client import Engine

__all__ = ["Engine"]
