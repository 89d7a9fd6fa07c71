"""trainlab's HTTP service: the FastAPI app, its routes, schemas and middleware, the domain
logic behind the routes (api/services) and the work the API process does beside requests
(api/background: dispatch and the reaper). Depends on `core` only; never imports `worker`
or torch.
"""
