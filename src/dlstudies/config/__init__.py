"""Everything about a run's config that Hydra and OmegaConf do not do themselves.

``errors`` (the one-line error type), ``resolvers`` (the ``${dls.*:}`` interpolations and the
folder names of runs and sweeps), ``argv`` (group options checked before Hydra composes),
``validation`` (values checked before anything is built), ``help`` (the text of --help), and what
the interpolations read from the machine: ``gpus`` (visible and requested GPUs) and
``wandb_login`` (whether W&B logs online). Import the submodule you need; this package imports
nothing, so the data modules can use ``errors`` without pulling in Hydra. It is the floor: nothing
in it imports a dlstudies module outside it, so every other module may use it.
"""
