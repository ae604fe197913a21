"""Everything about a run's config that Hydra and OmegaConf do not do themselves.

``errors`` (the one-line error type), ``resolvers`` (the ``${dls.*:}`` interpolations and the
folder names of runs and sweeps), ``argv`` (group options checked before Hydra composes) and
``validation`` (values checked before anything is built). Import the submodule you need; this
package imports nothing, so the data modules can use ``errors`` without pulling in Hydra.
"""
