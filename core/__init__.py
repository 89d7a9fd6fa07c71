"""trainlab's torch-free core, shared by the API and the workers: the settings, the experiment
spec and presets (the one contract between the two), the store and its lifecycle rules, and
the broker's task and queue names. Imports neither `api` nor `worker`, nor torch.
"""
