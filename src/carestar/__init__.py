"""carestar: hierarchical Bayesian models of social care star ratings.

The machinery every model shares: data (study tables, synthetic study, tidy CSV),
inference front end, ArviZ diagnostics, run directories and reports. Models live in the
top-level ``models`` package and are chosen by Hydra's ``_target_``.
"""

__version__ = "0.1.0"

from carestar.resolvers import register as _register_resolvers

_register_resolvers()  # conf/config.yaml's ${carestar.run_folder:...} and ${carestar.catalogue:}
