"""Training methods, registered by name; one file per method.

Adding a method is adding a file here with a ``@register_method`` class and
an import line below. The engine, the CLI and the tests find it through
``METHODS`` (``augbench.methods.registry``).
"""

# Registration: importing each method file registers its method.
from augbench.methods import ce, cskd, dlb, lsr, pskd, tfkd_reg  # noqa: F401
from augbench.methods.base import Batch, Method, Mixer, StepOutput
from augbench.methods.registry import METHODS, create_method, get_method, list_methods, register_method

__all__ = ["METHODS", "Batch", "Method", "Mixer", "StepOutput", "create_method", "get_method", "list_methods",
           "register_method"]
